//! The router, in-process, against a real PostgreSQL with the migrations applied: every
//! endpoint, filters, pagination, text search, 404s, 400s for each class of bad parameter, the
//! auth matrix and readiness. What only the process shows is in tests/process.rs.
//!
//! Every test runs in each way the service can reach its database (`support::Mode`): directly
//! in plaintext, directly over TLS with `verify-full`, and through pgbouncer in transaction
//! mode. The macro at the bottom makes one test per (test, mode).

mod support;

use std::collections::BTreeSet;

use openeu_api::EXPECTED_MIGRATION;
use serde_json::Value;
use support::{Answer, JWT_SECRET, Mode, Server, app::App, jwt, psql};

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn endpoints_answer_with_the_database_contents(mode: Mode) {
    let db = Server::start_in(mode);
    let app = App::local(&db);

    let health = app.get("/health").await;
    assert_eq!(
        (health.status, health.json()["status"].as_str()),
        (200, Some("ok"))
    );

    let ready = app.get("/ready").await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.json()["migration"], EXPECTED_MIGRATION);
    assert_eq!(ready.json()["expected_migration"], EXPECTED_MIGRATION);

    let root = app.get("/").await.json();
    assert_eq!(root["database_host"], "127.0.0.1");
    assert_eq!(root["migration"], EXPECTED_MIGRATION);
    assert_eq!(root["expected_migration"], EXPECTED_MIGRATION);
    assert_eq!(root["environment"], "local");
    assert_eq!(root["is_pull_request"], false);
    assert!(
        !root.to_string().contains("postgres@"),
        "no credentials in /: {root}"
    );

    // The default page: 50 at most, ordered by start time then id.
    let page = app.get("/meetings").await.json();
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
        let got = ids(&app
            .get(&format!("/meetings?{query}&limit=500"))
            .await
            .json());
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
    let injection = app
        .get("/meetings?q=%27%29%3B%20DROP%20TABLE%20meetings%3B%20--")
        .await;
    assert_eq!(injection.status, 200, "{}", injection.body);
    assert_eq!(psql(db.port, "select count(*) from meetings"), "42");

    let one = app.get("/meetings/m-007").await;
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
    let missing = app.get("/meetings/m-999").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"], "not_found");

    let files = app
        .get("/legislative-files?status=adopted&committee=ENVI")
        .await
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
    let by_year = app
        .get("/legislative-files?year=2023&q=digital")
        .await
        .json();
    assert_eq!(by_year["items"][0]["id"], "2023/0212(COD)");
    assert_eq!(by_year["total"], 1);
    let file = app.get("/legislative-files/2021/0106(COD)").await;
    assert_eq!(file.status, 200, "{}", file.body);
    assert_eq!(file.json()["title"], "Artificial Intelligence Act");
    assert_eq!(
        app.get("/legislative-files/2099/0001(COD)").await.status,
        404
    );

    let countries = app.get("/countries").await.json();
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
    let topics = app.get("/topics").await.json();
    assert_eq!(topics.as_array().unwrap().len(), 6);

    assert_eq!(app.get("/nope").await.status, 404);
}

async fn pages_have_no_gaps_or_duplicates(mode: Mode) {
    let db = Server::start_in(mode);
    let app = App::local(&db);
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
            let page = app.get(&path).await.json();
            seen.extend(ids(&page));
            match page["next_cursor"].as_str() {
                Some(cursor) => {
                    path = format!("/meetings?limit=4&country={country}&cursor={cursor}");
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
        by_offset.extend(ids(&app
            .get(&format!("/meetings?limit=5&offset={offset}"))
            .await
            .json()));
    }
    let everything: Vec<String> = psql(db.port, "select id from meetings order by start_time, id")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(by_offset, everything);
}

async fn every_class_of_bad_parameter_is_a_400_with_a_detail(mode: Mode) {
    let db = Server::start_in(mode);
    let app = App::local(&db);
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
        let answer = app.get(path).await;
        assert_eq!(answer.status, 400, "{path}: {}", answer.body);
        let body = answer.json();
        assert_eq!(body["error"], "invalid_parameter", "{path}");
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{path}: {body}"
        );
    }
    assert_eq!(app.get("/meetings/").await.status, 404);
}

/// The hostile inputs of issue 21: each gets the contract's JSON error, never a 5xx.
async fn hostile_inputs_get_json_4xx_never_5xx(mode: Mode) {
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
    let db = Server::start_in(mode);
    let app = App::local(&db);
    let cursor = |t: &str, id: &str| {
        URL_SAFE_NO_PAD.encode(serde_json::json!({ "t": t, "id": id }).to_string())
    };
    let refused = [
        // Offsets PostgreSQL cannot read (it stops at ±15:59), in start, end and a cursor.
        "/meetings?start=2026-03-01T09:30:00%2B16:00".to_owned(),
        "/meetings?end=2026-03-01T09:30:00-23:59".to_owned(),
        format!(
            "/meetings?cursor={}",
            cursor("2026-01-01T00:00:00+16:00", "x")
        ),
        // A NUL byte in a cursor's id.
        format!(
            "/meetings?cursor={}",
            cursor("2026-01-01T00:00:00Z", "a\u{0}b")
        ),
        // Malformed percent-encodings and bytes that are not UTF-8.
        "/meetings?q=%zz".to_owned(),
        "/meetings?q=%4".to_owned(),
        "/meetings?topic=%".to_owned(),
        "/meetings?q=%C3".to_owned(),
        "/meetings/%FF%FE".to_owned(),
        "/legislative-files/%C3".to_owned(),
        // An empty value is a value, and not a valid one.
        "/meetings?country=".to_owned(),
        "/meetings?source=".to_owned(),
        "/legislative-files?committee=".to_owned(),
        "/legislative-files?status=".to_owned(),
        "/meetings?limit=".to_owned(),
        "/meetings?start=".to_owned(),
        "/meetings?cursor=".to_owned(),
        // Ids over the contract's length in characters.
        format!("/meetings/{}", "x".repeat(201)),
        format!("/legislative-files/{}", "é".repeat(41)),
    ];
    for path in &refused {
        let answer = app.get(path).await;
        assert_eq!(answer.status, 400, "{path}: {}", answer.body);
        assert_eq!(
            answer.header("content-type"),
            Some("application/json"),
            "{path}"
        );
        assert_eq!(answer.json()["error"], "invalid_parameter", "{path}");
    }
    // NUL in a path id names nothing (PostgreSQL's text cannot hold it); ids are counted in
    // characters, so 150 two-byte characters are within the 200 allowed.
    for path in [
        "/meetings/a%00b".to_owned(),
        "/legislative-files/2021%000106(COD)".to_owned(),
        format!("/meetings/{}", "é".repeat(150)),
        format!("/legislative-files/{}", "é".repeat(40)),
    ] {
        let answer = app.get(&path).await;
        assert_eq!(answer.status, 404, "{path}: {}", answer.body);
        assert_eq!(answer.json()["error"], "not_found", "{path}");
    }
    // Empty free text is no filter; control characters are refused as the contract's pattern.
    assert_eq!(app.get("/meetings?q=&topic=").await.status, 200);
    assert_eq!(app.get("/meetings?q=%C2%85").await.status, 400);
    // An X-Request-Id the contract does not allow is refused, under an id of ours.
    for bad in ["", "has space", "a/b", &"x".repeat(65)] {
        let answer = app.get_with("/health", &[("x-request-id", bad)]).await;
        assert_eq!(answer.status, 400, "{bad:?}: {}", answer.body);
        assert_ne!(answer.header("x-request-id"), Some(bad));
    }
    let answer = app
        .get_with("/health", &[("x-request-id", "abc-1.2_3")])
        .await;
    assert_eq!(
        (answer.status, answer.header("x-request-id")),
        (200, Some("abc-1.2_3"))
    );
}

/// A value the database refuses (SQLSTATE class 22) is the caller's error, not a server fault.
async fn data_exceptions_are_the_callers_error(mode: Mode) {
    let db = Server::start_in(mode);
    let config = openeu_api::Config::from_lookup(openeu_env::lookup_from(
        &db.service_env()
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .chain([("SUPABASE_JWT_SECRET", JWT_SECRET)])
            .collect::<Vec<_>>(),
    ))
    .unwrap();
    let pool = openeu_api::Db::connect(config.resolve_database().unwrap()).unwrap();
    let err = pool
        .starts_before("2026-03-01T09:30:00+16:00", "2026-03-02")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("SQLSTATE 22009"), "{err}");
    assert!(
        !err.to_string().contains("16:00"),
        "no value in the text: {err}"
    );
    let err = pool
        .starts_before("a\u{0}b", "2026-03-02")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("SQLSTATE 22"), "{err}");
    let api: openeu_api::ApiError = err.into();
    assert_eq!(api.status(), 400);
}

/// GET /profile with `token` as the bearer token, or with no Authorization header.
async fn profile(app: &App, token: Option<String>) -> Answer {
    match token {
        Some(t) => {
            app.get_with("/profile", &[("Authorization", &format!("Bearer {t}"))])
                .await
        }
        None => app.get("/profile").await,
    }
}

async fn the_profile_requires_a_valid_supabase_jwt(mode: Mode) {
    let db = Server::start_in(mode);
    let app = App::local(&db);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = |sub: &str, aud: &str, exp: u64| {
        format!(r#"{{"sub":"{sub}","aud":"{aud}","exp":{exp},"role":"authenticated"}}"#)
    };
    let ada = "3f2c1a9e-8b7d-4c6e-9f0a-1b2c3d4e5f60";
    let hs256 = r#"{"alg":"HS256","typ":"JWT"}"#;
    let ok = profile(
        &app,
        Some(jwt(
            hs256,
            &claims(ada, "authenticated", now + 600),
            JWT_SECRET.as_bytes(),
        )),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["display_name"], "Ada");
    assert_eq!(ok.json()["countries"], serde_json::json!(["DE", "FR"]));

    let no_profile = profile(
        &app,
        Some(jwt(
            hs256,
            &claims(
                "7d6e5f40-3a2b-4c1d-8e9f-0a1b2c3d4e5f",
                "authenticated",
                now + 600,
            ),
            JWT_SECRET.as_bytes(),
        )),
    )
    .await;
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
        let answer = profile(&app, token).await;
        assert_eq!(answer.status, 401, "{case}: {}", answer.body);
        assert!(
            answer
                .header("www-authenticate")
                .is_some_and(|v| v.starts_with("Bearer")),
            "{case}"
        );
        assert_eq!(answer.json()["error"], "unauthorized", "{case}");
    }
    let basic = app
        .get_with("/profile", &[("Authorization", "Basic YTpi")])
        .await;
    assert_eq!(basic.status, 401);
}

async fn readiness_follows_the_schema_and_the_database(mode: Mode) {
    let mut db = Server::start_in(mode);
    let app = App::local(&db);
    assert_eq!(app.get("/ready").await.status, 200);
    psql(db.port, "delete from supabase_migrations.schema_migrations");
    let behind = app.get("/ready").await;
    assert_eq!(behind.status, 503);
    assert!(
        behind.json()["detail"]
            .as_str()
            .unwrap()
            .contains(EXPECTED_MIGRATION),
        "{}",
        behind.body
    );
    db.stop();
    let down = app.get("/ready").await;
    assert_eq!(down.status, 503, "{}", down.body);
    let meetings = app.get("/meetings").await;
    assert_eq!(meetings.status, 503, "{}", meetings.body);
    assert_eq!(meetings.json()["error"], "database_unavailable");
    assert_eq!(
        app.get("/health").await.status,
        200,
        "liveness needs no database"
    );
}

async fn readiness_accepts_a_schema_ahead_and_refuses_one_behind(mode: Mode) {
    let db = Server::start_in(mode);
    let app = App::local(&db);
    // An expand-first migration applied before this build is deployed: still ready.
    let ahead = "29991231235959";
    psql(
        db.port,
        &format!("insert into supabase_migrations.schema_migrations (version) values ('{ahead}')"),
    );
    let ready = app.get("/ready").await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.json()["migration"], ahead);
    assert_eq!(ready.json()["expected_migration"], EXPECTED_MIGRATION);
    let root = app.get("/").await.json();
    assert_eq!(
        (
            root["migration"].as_str(),
            root["expected_migration"].as_str()
        ),
        (Some(ahead), Some(EXPECTED_MIGRATION))
    );

    // One behind: the newest applied migration is older than the expected one.
    let behind = (EXPECTED_MIGRATION.parse::<u64>().unwrap() - 1).to_string();
    psql(
        db.port,
        &format!(
            "delete from supabase_migrations.schema_migrations;
             insert into supabase_migrations.schema_migrations (version) values ('{behind}')"
        ),
    );
    let not_ready = app.get("/ready").await;
    assert_eq!(not_ready.status, 503, "{}", not_ready.body);
    let body = not_ready.json();
    assert_eq!(body["error"], "not_ready");
    assert_eq!(body["migration"], behind.as_str());
    assert_eq!(body["expected_migration"], EXPECTED_MIGRATION);
    assert_eq!(app.get("/").await.json()["migration"], behind.as_str());
}

async fn meetings_filter_by_topic_id_or_name(mode: Mode) {
    let db = Server::start_in(mode);
    let app = App::local(&db);
    let by_topic = |condition: &str| -> Vec<String> {
        psql(
            db.port,
            &format!(
                "select m.id from meetings m where exists (select 1 from meeting_topics mt \
                 where mt.meeting_id = m.id and mt.topic_id = 'energy') {condition} \
                 order by m.start_time, m.id"
            ),
        )
        .lines()
        .map(str::to_owned)
        .collect()
    };
    let energy = by_topic("");
    assert!(energy.len() > 3, "{energy:?}");
    for query in ["topic=energy", "topic=Energy"] {
        let page = app.get(&format!("/meetings?{query}&limit=500")).await;
        assert_eq!(page.status, 200, "{query}: {}", page.body);
        assert_eq!(ids(&page.json()), energy, "{query}");
    }
    // Combined with country ("German meetings about energy") and with other filters.
    let german = by_topic("and m.country = 'DE'");
    assert!(!german.is_empty());
    assert_eq!(
        ids(&app.get("/meetings?country=DE&topic=energy").await.json()),
        german
    );
    assert_eq!(
        ids(&app
            .get("/meetings?topic=Energy&country=DE&source=council")
            .await
            .json()),
        by_topic("and m.country = 'DE' and m.source = 'council'")
    );
    // Every item of the filtered page carries the topic.
    for item in app.get("/meetings?topic=energy").await.json()["items"]
        .as_array()
        .unwrap()
    {
        assert!(
            item["topics"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["id"] == "energy"),
            "{item}"
        );
    }
    // An unknown topic matches nothing; it is not an error.
    let none = app.get("/meetings?topic=astrology").await;
    assert_eq!((none.status, ids(&none.json()).len()), (200, 0));

    // Pages by cursor and by offset give the same meetings as one page.
    let mut by_cursor = Vec::new();
    let mut path = "/meetings?topic=energy&limit=2".to_owned();
    for pages in 0.. {
        assert!(pages < 100, "the cursor walk ends");
        let page = app.get(&path).await.json();
        by_cursor.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/meetings?topic=energy&limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(by_cursor, energy);
    let mut by_offset = Vec::new();
    for offset in (0..energy.len()).step_by(3) {
        by_offset.extend(ids(&app
            .get(&format!("/meetings?topic=Energy&limit=3&offset={offset}"))
            .await
            .json()));
    }
    assert_eq!(by_offset, energy);

    for bad in [
        format!("/meetings?topic={}", "x".repeat(101)),
        "/meetings?topic=%07".to_owned(),
        "/meetings?topic=energy&topic=trade".to_owned(),
    ] {
        let answer = app.get(&bad).await;
        assert_eq!(answer.status, 400, "{bad}: {}", answer.body);
    }
}

async fn a_meeting_has_its_topics_in_one_shape_on_both_endpoints(mode: Mode) {
    let db = Server::start_in(mode);
    let app = App::local(&db);
    // A meeting with two topics, so that the order is part of the shape.
    psql(
        db.port,
        "insert into meeting_topics (meeting_id, topic_id) values ('m-007', 'trade')",
    );
    let page = app.get("/meetings?limit=500").await.json();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 42);
    for item in items {
        let id = item["id"].as_str().unwrap();
        let one = app.get(&format!("/meetings/{id}")).await.json();
        assert_eq!(item["topics"], one["topics"], "{id}");
        for topic in item["topics"].as_array().unwrap() {
            let keys: Vec<&String> = topic.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["id", "name"], "{id}: {topic}");
        }
    }
    let m007 = items.iter().find(|m| m["id"] == "m-007").unwrap();
    assert_eq!(
        m007["topics"],
        serde_json::json!([
            { "id": "energy", "name": "Energy" },
            { "id": "trade", "name": "Trade" },
        ])
    );
    let untagged = items.iter().find(|m| m["id"] == "m-001b").unwrap();
    assert_eq!(untagged["topics"], serde_json::json!([]));
}

/// One `#[tokio::test]` per test and connection mode, in a module per mode.
macro_rules! in_each_mode {
    ($($test:ident),* $(,)?) => {
        mod plain {
            $(#[tokio::test]
            async fn $test() {
                super::$test(super::Mode::Plain).await;
            })*
        }
        mod tls {
            $(#[tokio::test]
            async fn $test() {
                super::$test(super::Mode::Tls).await;
            })*
        }
        mod pooler {
            $(#[tokio::test]
            async fn $test() {
                super::$test(super::Mode::Pooler).await;
            })*
        }
    };
}

in_each_mode!(
    endpoints_answer_with_the_database_contents,
    pages_have_no_gaps_or_duplicates,
    every_class_of_bad_parameter_is_a_400_with_a_detail,
    the_profile_requires_a_valid_supabase_jwt,
    readiness_follows_the_schema_and_the_database,
    readiness_accepts_a_schema_ahead_and_refuses_one_behind,
    meetings_filter_by_topic_id_or_name,
    a_meeting_has_its_topics_in_one_shape_on_both_endpoints,
    hostile_inputs_get_json_4xx_never_5xx,
    data_exceptions_are_the_callers_error,
);
