//! The service as a process, where the process is what is tested: the request log on stderr
//! (JSON lines with request ids, no secrets), SIGTERM draining in-flight requests, and the
//! command line (`--help`, `--version`).

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{
    JWT_SECRET, Server,
    process::{Service, get, run_to_exit_with},
    psql,
};

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn help_prints_usage_and_exits_0() {
    for flag in ["--help", "-h"] {
        let (code, output) = run_to_exit_with(&[flag], &[]);
        assert_eq!(code, Some(0), "{flag}: {output}");
        for expected in [
            "Usage:",
            "serve",
            "healthcheck",
            "--version",
            "crates/openeu-env",
        ] {
            assert!(
                output.contains(expected),
                "{flag}: {expected} in:\n{output}"
            );
        }
    }
    let (code, output) = run_to_exit_with(&["--version"], &[]);
    assert_eq!(code, Some(0), "{output}");
    assert!(output.starts_with("openeu-api "), "{output}");
    let (code, output) = run_to_exit_with(&["--bogus"], &[]);
    assert_eq!(code, Some(2), "{output}");
    assert!(output.contains("--help"), "{output}");
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
