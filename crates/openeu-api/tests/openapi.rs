//! The contract (openapi.json at the repository root) against the router: every route of the
//! router is a path of the document and nothing else is; every query parameter a route accepts
//! is a parameter of its operation and nothing else is; every `$ref` resolves; `GET
//! /openapi.json` serves the committed file byte for byte. The parameters are read from the
//! router's own answer to an unknown parameter (its 400 names what it allows), so the test asks
//! the code, not a copy of its lists. No database is needed: parameters are checked before any
//! SQL runs, and the pool points at a closed port.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use axum::{body::Body, http::Request};
use http_body_util::BodyExt;
use openeu_api::{AppState, Config, Db, OPENAPI, log, route_paths};
use serde_json::Value;
use tower::ServiceExt;

fn document() -> Value {
    serde_json::from_str(OPENAPI).expect("openapi.json is JSON")
}

/// `/legislative-files/{*id}` and `/legislative-files/{reference}` are the same route: the
/// parameter's name is the document's choice, the shape is the router's.
fn shape(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "{}"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn router() -> axum::Router {
    log::set_level(log::Level::Error);
    let port = openeu_testdb::free_port();
    let url = format!("postgres://nobody:none@127.0.0.1:{port}/none");
    let config = Config::from_lookup(openeu_env::lookup_from(&[
        ("DATABASE_URL", &url),
        ("SUPABASE_JWT_SECRET", "contract-test-secret"),
    ]))
    .unwrap_or_else(|invalid| panic!("{invalid}"));
    let db = Db::connect(config.resolve_database().unwrap()).unwrap();
    openeu_api::router(AppState::new(&config, db))
}

async fn get(router: &axum::Router, uri: &str) -> (u16, String) {
    let response = router
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A request path for a document path: `{x}` becomes a sample value.
fn concrete(path: &str) -> String {
    path.replace("{id}", "sample")
        .replace("{reference}", "2021/0106(COD)")
}

/// The operation's query parameters, `$ref`s resolved.
fn query_parameters(doc: &Value, operation: &Value) -> BTreeSet<String> {
    operation["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| resolve(doc, p))
        .filter(|p| p["in"] == "query")
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(pointer) => doc
            .pointer(pointer.trim_start_matches('#'))
            .unwrap_or_else(|| panic!("openapi.json: unresolved $ref {pointer}")),
        None => value,
    }
}

#[test]
fn every_route_of_the_router_is_in_the_document_and_nothing_else() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeSet<String> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(|p| shape(p))
        .collect();
    let routed: BTreeSet<String> = route_paths().into_iter().map(shape).collect();
    let missing: Vec<_> = routed.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routed).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "openapi.json disagrees with the router (src/api.rs `routes`): routes not documented {missing:?}, documented paths with no route {extra:?}"
    );
    for (path, item) in doc["paths"].as_object().unwrap() {
        let methods: Vec<&String> = item.as_object().unwrap().keys().collect();
        assert_eq!(methods, ["get"], "{path}: the API only answers GET");
    }
}

#[tokio::test]
async fn every_query_parameter_the_router_accepts_is_in_the_document_and_nothing_else() {
    let doc = document();
    let router = router();
    let mut disagreements = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let documented = query_parameters(&doc, &item["get"]);
        let uri = format!("{}?not-a-parameter=1", concrete(path));
        let (status, body) = get(&router, &uri).await;
        let accepted: BTreeSet<String> = if status == 400 {
            let detail: Value = serde_json::from_str(&body).unwrap();
            let detail = detail["detail"].as_str().unwrap();
            let (_, allowed) = detail
                .split_once("allowed: ")
                .unwrap_or_else(|| panic!("{uri}: a 400 that lists no parameters: {detail}"));
            allowed.split(", ").map(str::to_owned).collect()
        } else {
            // A route that reads no query string ignores it: it accepts no parameter.
            BTreeSet::new()
        };
        if accepted != documented {
            disagreements.insert(path.clone(), (accepted, documented));
        }
        // Each documented parameter is known on its own (an empty value may be refused as a bad
        // value, never as an unknown parameter).
        for name in query_parameters(&doc, &item["get"]) {
            let (status, body) = get(&router, &format!("{}?{name}=", concrete(path))).await;
            assert!(
                !body.contains("unknown parameter"),
                "{path}: documented parameter `{name}` is refused ({status}): {body}"
            );
        }
    }
    assert!(
        disagreements.is_empty(),
        "query parameters: router (accepted) vs openapi.json (documented): {disagreements:#?}"
    );
}

#[test]
fn every_reference_resolves_and_every_operation_answers_json() {
    let doc = document();
    fn walk<'a>(value: &'a Value, refs: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    refs.push(r);
                }
                map.values().for_each(|v| walk(v, refs));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, refs)),
            _ => {}
        }
    }
    let mut refs = Vec::new();
    walk(&doc, &mut refs);
    assert!(refs.len() > 20);
    for r in refs {
        assert!(
            r.starts_with("#/") && doc.pointer(&r[1..]).is_some(),
            "openapi.json: $ref {r} does not resolve"
        );
    }
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (status, response) in item["get"]["responses"].as_object().unwrap() {
            let response = resolve(&doc, response);
            assert!(
                response["content"]["application/json"]["schema"].is_object(),
                "{path} {status}: no application/json schema"
            );
        }
    }
}

#[tokio::test]
async fn the_service_serves_the_committed_document() {
    let (status, body) = get(&router(), "/openapi.json").await;
    assert_eq!(status, 200);
    let committed = std::fs::read_to_string(support::repo_root().join("openapi.json")).unwrap();
    assert_eq!(body, committed);
}
