//! The service against a real PostgreSQL with the migrations applied: every endpoint, filters,
//! pagination, text search, 404s, 400s for each class of bad parameter, the auth matrix,
//! readiness, logs and graceful shutdown.

mod support;

use std::{collections::BTreeSet, time::Duration};

use serde_json::Value;
use support::{JWT_SECRET, Server, Service, get, jwt, psql};

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn endpoints_answer_with_the_database_contents() {
    let db = Server::start();
    let service = Service::local(&db);

    let health = service.get("/health");
    assert_eq!(
        (health.status, health.json()["status"].as_str()),
        (200, Some("ok"))
    );

    let ready = service.get("/ready");
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.json()["migration"], "20261127000000");

    let root = service.get("/").json();
    assert_eq!(root["database_host"], "127.0.0.1");
    assert_eq!(root["environment"], "local");
    assert_eq!(root["is_pull_request"], false);
    assert!(
        !root.to_string().contains("postgres@"),
        "no credentials in /: {root}"
    );

    // The default page: 50 at most, ordered by start time then id.
    let page = service.get("/meetings").json();
    let got = ids(&page);
    let expected: Vec<String> = psql(
        db.port,
        "select id from meetings order by start_time, id limit 50",
    )
    .lines()
    .map(str::to_owned)
    .collect();
    assert_eq!(got, expected);
    assert_eq!(page["limit"], 50);
    let tie = got.iter().position(|id| id == "m-001").unwrap();
    assert_eq!(
        got[tie + 1],
        "m-001b",
        "equal start times are ordered by id"
    );

    // Filters agree with SQL on the same rows.
    for (query, condition) in [
        ("country=DE", "country = 'DE'"),
        ("source=council", "source = 'council'"),
        (
            "start=2026-01-10&end=2026-01-15",
            "start_time >= '2026-01-10' and start_time < '2026-01-15'",
        ),
        ("country=FR&source=mep", "country = 'FR' and source = 'mep'"),
        (
            "q=climate",
            "search_vector @@ websearch_to_tsquery('simple', 'climate')",
        ),
        (
            "q=caf%C3%A9",
            "search_vector @@ websearch_to_tsquery('simple', 'café')",
        ),
    ] {
        let got = ids(&service.get(&format!("/meetings?{query}&limit=500")).json());
        let expected: Vec<String> = psql(
            db.port,
            &format!("select id from meetings where {condition} order by start_time, id"),
        )
        .lines()
        .map(str::to_owned)
        .collect();
        assert!(!expected.is_empty(), "{query} matches rows");
        assert_eq!(got, expected, "{query}");
    }
    // Text that looks like SQL is only text.
    let injection = service.get("/meetings?q=%27%29%3B%20DROP%20TABLE%20meetings%3B%20--");
    assert_eq!(injection.status, 200, "{}", injection.body);
    assert_eq!(psql(db.port, "select count(*) from meetings"), "42");

    let one = service.get("/meetings/m-007");
    assert_eq!(one.status, 200);
    let one = one.json();
    assert_eq!(one["id"], "m-007");
    assert_eq!(
        one["topics"][0]["id"],
        psql(
            db.port,
            "select topic_id from meeting_topics where meeting_id = 'm-007'"
        )
    );
    let missing = service.get("/meetings/m-999");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"], "not_found");

    let files = service
        .get("/legislative-files?status=adopted&committee=ENVI")
        .json();
    let got: BTreeSet<&str> = files["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        got,
        BTreeSet::from(["2021/0211(COD)", "2021/0214(COD)", "2022/0140(COD)"])
    );
    assert_eq!(files["total"], 3);
    let by_year = service.get("/legislative-files?year=2023&q=digital").json();
    assert_eq!(by_year["items"][0]["id"], "2023/0212(COD)");
    assert_eq!(by_year["total"], 1);
    let file = service.get("/legislative-files/2021/0106(COD)");
    assert_eq!(file.status, 200, "{}", file.body);
    assert_eq!(file.json()["title"], "Artificial Intelligence Act");
    assert_eq!(service.get("/legislative-files/2099/0001(COD)").status, 404);

    let countries = service.get("/countries").json();
    let de = countries
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["country"] == "DE")
        .unwrap();
    assert_eq!(
        de["meetings"].to_string(),
        psql(
            db.port,
            "select count(*) from meetings where country = 'DE'"
        )
    );
    let topics = service.get("/topics").json();
    assert_eq!(topics.as_array().unwrap().len(), 6);

    assert_eq!(service.get("/nope").status, 404);
}

#[test]
fn pages_have_no_gaps_or_duplicates() {
    let db = Server::start();
    let service = Service::local(&db);
    let all: Vec<String> = psql(
        db.port,
        "select id from meetings where country in ('DE', 'FR') order by start_time, id",
    )
    .lines()
    .map(str::to_owned)
    .collect();
    // By cursor, one country after the other.
    let mut seen = Vec::new();
    for country in ["DE", "FR"] {
        let mut path = format!("/meetings?limit=4&country={country}");
        for pages in 0.. {
            assert!(pages < 100, "the cursor walk ends");
            let page = service.get(&path).json();
            seen.extend(ids(&page));
            match page["next_cursor"].as_str() {
                Some(cursor) => {
                    path = format!("/meetings?limit=4&country={country}&cursor={cursor}")
                }
                None => break,
            }
        }
    }
    assert_eq!(seen.len(), all.len(), "no duplicates or gaps: {seen:?}");
    assert_eq!(
        seen.iter().collect::<BTreeSet<_>>(),
        all.iter().collect::<BTreeSet<_>>()
    );

    // By offset, over everything.
    let total: usize = psql(db.port, "select count(*) from meetings")
        .parse()
        .unwrap();
    let mut by_offset = Vec::new();
    for offset in (0..total).step_by(5) {
        by_offset.extend(ids(&service
            .get(&format!("/meetings?limit=5&offset={offset}"))
            .json()));
    }
    let everything: Vec<String> = psql(db.port, "select id from meetings order by start_time, id")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(by_offset, everything);
}

#[test]
fn every_class_of_bad_parameter_is_a_400_with_a_detail() {
    let db = Server::start();
    let service = Service::local(&db);
    for path in [
        "/meetings?bogus=1",
        "/meetings?limit=5&limit=6",
        "/meetings?limit=0",
        "/meetings?limit=501",
        "/meetings?limit=ten",
        "/meetings?offset=-1",
        "/meetings?start=yesterday",
        "/meetings?start=2026-02-30",
        "/meetings?end=2026-01-01T25:00:00Z",
        "/meetings?start=2026-02-01&end=2026-01-01",
        "/meetings?country=Germany",
        "/meetings?country=de",
        "/meetings?source=twitter",
        "/meetings?cursor=not-a-cursor",
        "/meetings?cursor=eyJ0IjoibmV2ZXIiLCJpZCI6IngifQ",
        "/meetings?offset=5&cursor=eyJ0IjoiMjAyNi0wMS0wMSIsImlkIjoieCJ9",
        "/meetings?q=%01control",
        &format!("/meetings?q={}", "x".repeat(201)),
        "/legislative-files?status=lost",
        "/legislative-files?year=1800",
        "/legislative-files?committee=environment",
    ] {
        let answer = service.get(path);
        assert_eq!(answer.status, 400, "{path}: {}", answer.body);
        let body = answer.json();
        assert_eq!(body["error"], "invalid_parameter", "{path}");
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{path}: {body}"
        );
    }
    assert_eq!(service.get("/meetings/").status, 404);
}

#[test]
fn the_profile_requires_a_valid_supabase_jwt() {
    let db = Server::start();
    let service = Service::local(&db);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = |sub: &str, aud: &str, exp: u64| {
        format!(r#"{{"sub":"{sub}","aud":"{aud}","exp":{exp},"role":"authenticated"}}"#)
    };
    let ada = "3f2c1a9e-8b7d-4c6e-9f0a-1b2c3d4e5f60";
    let hs256 = r#"{"alg":"HS256","typ":"JWT"}"#;
    let profile = |token: Option<String>| match token {
        Some(t) => get(
            service.port,
            "/profile",
            &[("Authorization", &format!("Bearer {t}"))],
        ),
        None => get(service.port, "/profile", &[]),
    };

    let ok = profile(Some(jwt(
        hs256,
        &claims(ada, "authenticated", now + 600),
        JWT_SECRET.as_bytes(),
    )));
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["display_name"], "Ada");
    assert_eq!(ok.json()["countries"], serde_json::json!(["DE", "FR"]));

    let no_profile = profile(Some(jwt(
        hs256,
        &claims(
            "7d6e5f40-3a2b-4c1d-8e9f-0a1b2c3d4e5f",
            "authenticated",
            now + 600,
        ),
        JWT_SECRET.as_bytes(),
    )));
    assert_eq!(no_profile.status, 404);

    let none_alg = {
        let t = jwt(
            r#"{"alg":"none"}"#,
            &claims(ada, "authenticated", now + 600),
            b"",
        );
        format!("{}.", t.rsplit_once('.').unwrap().0)
    };
    for (case, token) in [
        ("missing", None),
        (
            "wrong secret",
            Some(jwt(
                hs256,
                &claims(ada, "authenticated", now + 600),
                b"another-secret",
            )),
        ),
        ("alg none", Some(none_alg)),
        (
            "HS512",
            Some(jwt(
                r#"{"alg":"HS512"}"#,
                &claims(ada, "authenticated", now + 600),
                JWT_SECRET.as_bytes(),
            )),
        ),
        (
            "RS256",
            Some(jwt(
                r#"{"alg":"RS256"}"#,
                &claims(ada, "authenticated", now + 600),
                JWT_SECRET.as_bytes(),
            )),
        ),
        (
            "expired",
            Some(jwt(
                hs256,
                &claims(ada, "authenticated", now - 10),
                JWT_SECRET.as_bytes(),
            )),
        ),
        (
            "anon audience",
            Some(jwt(
                hs256,
                &claims(ada, "anon", now + 600),
                JWT_SECRET.as_bytes(),
            )),
        ),
        ("malformed", Some("not.a.jwt".to_owned())),
        ("two parts", Some("abc.def".to_owned())),
    ] {
        let answer = profile(token);
        assert_eq!(answer.status, 401, "{case}: {}", answer.body);
        assert!(
            answer
                .header("www-authenticate")
                .is_some_and(|v| v.starts_with("Bearer")),
            "{case}"
        );
        assert_eq!(answer.json()["error"], "unauthorized", "{case}");
    }
    let basic = get(service.port, "/profile", &[("Authorization", "Basic YTpi")]);
    assert_eq!(basic.status, 401);
}

#[test]
fn readiness_follows_the_schema_and_the_database() {
    let mut db = Server::start();
    let service = Service::local(&db);
    assert_eq!(service.get("/ready").status, 200);
    psql(db.port, "delete from supabase_migrations.schema_migrations");
    let behind = service.get("/ready");
    assert_eq!(behind.status, 503);
    assert!(
        behind.json()["detail"]
            .as_str()
            .unwrap()
            .contains("20261127000000"),
        "{}",
        behind.body
    );
    db.stop();
    let down = service.get("/ready");
    assert_eq!(down.status, 503, "{}", down.body);
    let meetings = service.get("/meetings");
    assert_eq!(meetings.status, 503, "{}", meetings.body);
    assert_eq!(meetings.json()["error"], "database_unavailable");
    assert_eq!(
        service.get("/health").status,
        200,
        "liveness needs no database"
    );
}

#[test]
fn logs_are_json_lines_with_request_ids_and_no_secrets() {
    let db = Server::start();
    let service = Service::local(&db);
    let answer = get(
        service.port,
        "/meetings?limit=1",
        &[("X-Request-Id", "abc-123")],
    );
    assert_eq!(answer.header("x-request-id"), Some("abc-123"));
    let generated = service.get("/health");
    assert!(
        generated
            .header("x-request-id")
            .is_some_and(|v| !v.is_empty())
    );
    let logs = service.logs();
    let lines: Vec<Value> = logs
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    let request = lines
        .iter()
        .find(|l| l["request_id"] == "abc-123")
        .expect("the request was logged");
    assert_eq!(request["path"], "/meetings");
    assert_eq!(request["status"], 200);
    assert!(request["latency_ms"].as_f64().is_some());
    assert!(!logs.contains(JWT_SECRET), "the JWT secret is not logged");
}

#[test]
fn an_in_flight_request_finishes_after_sigterm() {
    let db = Server::start();
    let mut service = Service::local(&db);
    // Hold a lock so that a request is in flight when SIGTERM arrives.
    let mut locker = openeu_testdb::psql_command(db.port)
        .arg("-c")
        .arg("begin; lock table meetings in access exclusive mode; select pg_sleep(2); commit;")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    support::wait_until("the lock", Duration::from_secs(10), || {
        psql(
            db.port,
            "select count(*) from pg_locks where relation = 'meetings'::regclass and mode = 'AccessExclusiveLock' and granted",
        ) == "1"
    });
    let port = service.port;
    let request = std::thread::spawn(move || get(port, "/meetings?limit=3", &[]));
    support::wait_until(
        "the request to wait on the lock",
        Duration::from_secs(10),
        || {
            psql(
                db.port,
                "select count(*) from pg_stat_activity where application_name = 'openeu-api' and wait_event_type = 'Lock'",
            ) == "1"
        },
    );
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &service.child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let answer = request.join().unwrap();
    assert_eq!(
        answer.status, 200,
        "the in-flight request completed: {}",
        answer.body
    );
    assert_eq!(ids(&answer.json()).len(), 3);
    let status = service.child.wait().unwrap();
    assert!(status.success(), "exit after SIGTERM: {status}");
    locker.wait().unwrap();
}
