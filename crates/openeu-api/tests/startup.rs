//! Startup: the environment is validated against the env spec with every problem reported at
//! once and no secret printed, the healthcheck subcommand, and preview instances resolving
//! their database through a local stub of the Supabase Management API.

mod support;

use std::{
    io::{BufRead, BufReader, Write},
    net::TcpListener,
    sync::{Arc, Mutex},
};

use support::{
    JWT_SECRET, Server, free_port,
    process::{Service, run_to_exit},
};

#[test]
fn every_missing_or_malformed_variable_is_reported_without_secrets() {
    let canary = "hunter2-canary-password";
    let (code, output) = run_to_exit(&[
        (
            "DATABASE_URL",
            &format!("postgres//app:{canary}@db.internal/openeu"),
        ),
        ("PORT", "eighty"),
        ("ENVIRONMENT", "staging"),
        ("LOG_LEVEL", "loud"),
    ]);
    assert_eq!(code, Some(2), "{output}");
    for expected in [
        "DATABASE_URL is malformed",
        "PORT is malformed",
        "ENVIRONMENT is malformed",
        "LOG_LEVEL is malformed",
        "SUPABASE_JWT_SECRET is missing",
    ] {
        assert!(output.contains(expected), "{expected}:\n{output}");
    }
    assert!(!output.contains(canary), "a secret leaked:\n{output}");

    // Production (Render) needs more, and all of it is listed at once.
    let (code, output) = run_to_exit(&[("RENDER", "true")]);
    assert_eq!(code, Some(2));
    for expected in [
        "DATABASE_URL",
        "SUPABASE_PROJECT_URL",
        "SUPABASE_PROJECT_ID",
        "SUPABASE_REST_KEY",
        "SUPABASE_JWT_SECRET",
    ] {
        assert!(
            output.contains(&format!("{expected} is missing")),
            "{expected}:\n{output}"
        );
    }
}

#[test]
fn healthcheck_subcommand_fails_without_a_server() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_openeu-api"))
        .arg("healthcheck")
        .env("PORT", free_port().to_string())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_openeu-api"))
        .arg("healthcheck")
        .env("PORT", "x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// How the stub answers.
#[derive(Clone)]
struct Scenario {
    branches_status: u16,
    branches: &'static str,
    /// Statuses of GET /v1/branches/{id}, in order; the last one repeats.
    statuses: Vec<&'static str>,
    db_port: u16,
    /// The branch's direct host: an IPv6-only one sends the service to the pooler.
    direct_host: &'static str,
    /// The port of the pooler that `GET /v1/projects/{ref}/config/database/pooler` names.
    pooler_port: u16,
}

/// A local stub of the Supabase Management API endpoints that previews use, with the
/// documented payload shapes. It records each request's path and Authorization header.
struct Stub {
    port: u16,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl Stub {
    fn start(scenario: Scenario) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            let mut detail_calls = 0;
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { break };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                let mut authorization = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':')
                        && k.eq_ignore_ascii_case("authorization")
                    {
                        authorization = v.trim().to_owned();
                    }
                }
                let path = request_line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("")
                    .to_owned();
                log.lock().unwrap().push((path.clone(), authorization));
                let (status, body) = if path == "/v1/projects/proj-ref/branches" {
                    (scenario.branches_status, scenario.branches.to_owned())
                } else if path.starts_with("/v1/branches/") {
                    let state = scenario.statuses[detail_calls.min(scenario.statuses.len() - 1)];
                    detail_calls += 1;
                    (
                        200,
                        format!(
                            r#"{{"ref":"branch-ref","postgres_version":"15.8","postgres_engine":"15","release_channel":"ga","status":"{state}","db_host":"{}","db_port":{},"db_user":"postgres","db_pass":"branch-db-pass-canary","jwt_secret":"x"}}"#,
                            scenario.direct_host, scenario.db_port
                        ),
                    )
                } else if path == "/v1/projects/branch-ref/config/database/pooler" {
                    // SupavisorConfigResponse, every required field of Supabase's OpenAPI
                    // document (operation v1-get-pooler-config); a replica entry comes first.
                    let entry = |kind: &str, port: u16| {
                        format!(
                            r#"{{"identifier":"branch-ref","database_type":"{kind}","is_using_scram_auth":true,"db_user":"postgres","db_host":"127.0.0.1","db_port":{port},"db_name":"postgres","connection_string":"postgres://postgres:[YOUR-PASSWORD]@127.0.0.1:{port}/postgres","connectionString":"postgres://postgres:[YOUR-PASSWORD]@127.0.0.1:{port}/postgres","default_pool_size":15,"max_client_conn":200,"pool_mode":"transaction"}}"#
                        )
                    };
                    (
                        200,
                        format!(
                            "[{},{}]",
                            entry("READ_REPLICA", 1),
                            entry("PRIMARY", scenario.pooler_port)
                        ),
                    )
                } else {
                    (404, r#"{"message":"Not found"}"#.to_owned())
                };
                let reason = match status {
                    200 => "OK",
                    401 => "Unauthorized",
                    404 => "Not Found",
                    _ => "Error",
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Stub { port, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

const BRANCHES: &str = r#"[
  {"id":"br-main","name":"main","project_ref":"proj-ref","parent_project_ref":"proj-ref","is_default":true,"git_branch":"main","status":"MIGRATIONS_PASSED"},
  {"id":"br-feature","name":"feature-x","project_ref":"branch-ref","parent_project_ref":"proj-ref","is_default":false,"git_branch":"feature/x","pr_number":42,"status":"MIGRATIONS_PASSED"}
]"#;

const TOKEN: &str = "sbp_management-token-canary";

fn preview_env(stub: &Stub, extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("IS_PULL_REQUEST", "true".to_owned()),
        ("RENDER", "true".to_owned()),
        ("RENDER_GIT_BRANCH", "feature/x".to_owned()),
        ("SUPABASE_PROJECT_ID", "proj-ref".to_owned()),
        ("SUPABASE_REST_KEY", TOKEN.to_owned()),
        (
            "SUPABASE_PROJECT_URL",
            "https://proj-ref.supabase.co".to_owned(),
        ),
        ("SUPABASE_JWT_SECRET", JWT_SECRET.to_owned()),
        ("SUPABASE_API_URL", stub.url()),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    env
}

fn as_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn a_preview_waits_for_its_branch_database_and_serves_from_it() {
    let db = Server::start();
    let stub = Stub::start(Scenario {
        branches_status: 200,
        branches: BRANCHES,
        statuses: vec!["COMING_UP", "ACTIVE_HEALTHY"],
        db_port: db.port,
        direct_host: "127.0.0.1",
        pooler_port: 1,
    });
    let env = preview_env(&stub, &[]);
    let service = Service::start(&as_refs(&env));
    let root = service.get("/").json();
    assert_eq!(root["environment"], "preview");
    assert_eq!(root["is_pull_request"], true);
    assert_eq!(root["git_branch"], "feature/x");
    assert_eq!(service.get("/meetings?limit=2").status, 200);
    let seen = stub.seen.lock().unwrap().clone();
    assert_eq!(seen[0].0, "/v1/projects/proj-ref/branches");
    assert_eq!(
        seen.iter()
            .filter(|(p, _)| p == "/v1/branches/br-feature")
            .count(),
        2,
        "asked again while COMING_UP: {seen:?}"
    );
    assert!(
        seen.iter()
            .all(|(_, auth)| auth == &format!("Bearer {TOKEN}")),
        "the token was sent as a bearer token"
    );
    let logs = service.logs();
    assert!(logs.contains("waiting for the preview database"), "{logs}");
    assert!(
        !logs.contains(TOKEN) && !logs.contains("branch-db-pass-canary"),
        "secrets stay out of logs:\n{logs}"
    );
}

#[test]
fn a_preview_whose_direct_host_is_ipv6_only_goes_through_the_pooler() {
    let db = Server::start();
    let bouncer = openeu_testdb::Pgbouncer::start(&db, "transaction");
    let stub = Stub::start(Scenario {
        branches_status: 200,
        branches: BRANCHES,
        statuses: vec!["ACTIVE_HEALTHY"],
        db_port: 5432,
        // Render's outbound traffic is IPv4: this host cannot be reached from there.
        direct_host: "::1",
        pooler_port: bouncer.port,
    });
    let env = preview_env(&stub, &[]);
    let service = Service::start(&as_refs(&env));
    let page = service.get("/meetings?limit=2");
    assert_eq!(page.status, 200, "{}\n{}", page.body, service.logs());
    let seen = stub.seen.lock().unwrap().clone();
    assert!(
        seen.iter()
            .any(|(p, _)| p == "/v1/projects/branch-ref/config/database/pooler"),
        "the pooler configuration of the branch's project was asked for: {seen:?}"
    );
    let logs = service.logs();
    assert!(logs.contains("using its pooler"), "{logs}");
    assert!(logs.contains(r#""pool_mode":"transaction""#), "{logs}");
    assert!(
        !logs.contains(TOKEN) && !logs.contains("branch-db-pass-canary"),
        "secrets stay out of logs:\n{logs}"
    );
}

#[test]
fn preview_failures_are_clear_and_keep_the_token_secret() {
    // (how the stub answers, extra environment, what the error must say)
    type Case = (
        Scenario,
        &'static [(&'static str, &'static str)],
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            Scenario {
                branches_status: 401,
                branches: r#"{"message":"Unauthorized"}"#,
                statuses: vec!["ACTIVE_HEALTHY"],
                db_port: 1,
                direct_host: "127.0.0.1",
                pooler_port: 1,
            },
            &[],
            "refused SUPABASE_REST_KEY",
        ),
        (
            Scenario {
                branches_status: 404,
                branches: r#"{"message":"Not found"}"#,
                statuses: vec!["ACTIVE_HEALTHY"],
                db_port: 1,
                direct_host: "127.0.0.1",
                pooler_port: 1,
            },
            &[],
            "check SUPABASE_PROJECT_ID",
        ),
        (
            Scenario {
                branches_status: 500,
                branches: r#"{"message":"boom"}"#,
                statuses: vec!["ACTIVE_HEALTHY"],
                db_port: 1,
                direct_host: "127.0.0.1",
                pooler_port: 1,
            },
            &[],
            "HTTP 500",
        ),
        (
            Scenario {
                branches_status: 200,
                branches: BRANCHES,
                statuses: vec!["ACTIVE_HEALTHY"],
                db_port: 1,
                direct_host: "127.0.0.1",
                pooler_port: 1,
            },
            &[("RENDER_GIT_BRANCH", "feature/unknown")],
            "(branches: main, feature/x)",
        ),
        (
            Scenario {
                branches_status: 200,
                branches: BRANCHES,
                statuses: vec!["INIT_FAILED"],
                db_port: 1,
                direct_host: "127.0.0.1",
                pooler_port: 1,
            },
            &[],
            "is INIT_FAILED",
        ),
        (
            Scenario {
                branches_status: 200,
                branches: BRANCHES,
                statuses: vec!["COMING_UP"],
                db_port: 1,
                direct_host: "127.0.0.1",
                pooler_port: 1,
            },
            &[("PREVIEW_DB_DEADLINE_SECS", "1")],
            "still COMING_UP",
        ),
    ];
    for (scenario, extra, expected) in cases {
        let stub = Stub::start(scenario);
        let mut env = preview_env(&stub, &[]);
        for (k, v) in extra {
            env.retain(|(name, _)| name != k);
            env.push((k, v.to_string()));
        }
        let (code, output) = run_to_exit(&as_refs(&env));
        assert_eq!(code, Some(2), "{expected}: {output}");
        assert!(
            output.contains(expected),
            "expected {expected:?} in:\n{output}"
        );
        assert!(!output.contains(TOKEN), "the token leaked:\n{output}");
    }
}
