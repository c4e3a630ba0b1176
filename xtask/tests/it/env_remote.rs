//! `env check --service`, `env push` and `doctor --remote` against the stub of Render's API
//! (xtask-stubs' render.rs), with its journal checked: a canary secret
//! (in the env file and on the stub's service) and the canary API key appear in no output and no
//! process's argv, and in no request but where they belong (the env var write body; the
//! Authorization header). `doctor --remote` also meets a real PostgreSQL with TLS only and a real
//! registry with htpasswd.

use std::{
    collections::BTreeMap,
    path::Path,
    process::Output,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use serde_json::Value;
use xtask_stubs::{
    Recorded,
    render::{self as stub, Scenario, Stub},
};

use crate::support::{Registry, TempDir, Xtask, free_port, repo_root, text};

struct Canaries {
    secret: String,
    api_key: String,
}

impl Canaries {
    fn new(test: &str) -> Canaries {
        let pid = std::process::id();
        Canaries {
            secret: format!("c4nary-{test}-{pid}-s3cr3t"),
            api_key: format!("rnd_c4nary_{test}_{pid}_k3y"),
        }
    }
}

/// A service whose variables pass the spec for production.
fn healthy(secret: &str) -> Vec<(String, String)> {
    [
        (
            "DATABASE_URL",
            format!("postgres://app:{secret}@db.internal:5432/openeu?sslmode=require"),
        ),
        ("SUPABASE_PROJECT_URL", "https://abc.supabase.co".to_owned()),
        ("SUPABASE_PROJECT_ID", "abc".to_owned()),
        ("SUPABASE_REST_KEY", secret.to_owned()),
        ("SUPABASE_JWT_SECRET", secret.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn start(canaries: &Canaries, env: Vec<(String, String)>) -> Stub {
    Stub::start(Scenario {
        api_key: canaries.api_key.clone(),
        env_vars: Vec::new(),
        env_values: env,
        ..Scenario::default()
    })
    .unwrap()
}

fn xtask<'a>(root: &'a Path, stub: &Stub, canaries: &Canaries) -> Xtask<'a> {
    Xtask::new(root)
        .env("RENDER_API_KEY", &canaries.api_key)
        .env("RENDER_SERVICE_ID", stub::SERVICE_ID)
        .env("RENDER_API_URL", &stub.api_url())
}

fn is_write(r: &Recorded) -> bool {
    r.method != "GET"
}

/// Runs xtask while watching every process's argv for the canaries.
fn run(x: &Xtask<'_>, args: &[&str], canaries: &Canaries) -> Output {
    let running = Arc::new(AtomicBool::new(true));
    let watchers: Vec<_> = [&canaries.secret, &canaries.api_key]
        .iter()
        .map(|c| crate::docker_failures::watch_argv((*c).clone(), Arc::clone(&running)))
        .collect();
    let out = x.output(args);
    running.store(false, Ordering::SeqCst);
    for watcher in watchers {
        let seen = watcher.join().unwrap();
        assert!(seen.is_empty(), "a canary was on a command line: {seen:?}");
    }
    let all = text(&out);
    for canary in [&canaries.secret, &canaries.api_key] {
        assert!(!all.contains(canary.as_str()), "{canary} leaked:\n{all}");
    }
    out
}

/// The secret only in the body of the env var list's replacement, the key only in the
/// Authorization header.
fn assert_journal_clean(stub: &Stub, canaries: &Canaries) {
    for r in stub.journal() {
        assert!(
            !r.target.contains(&canaries.secret) && !r.target.contains(&canaries.api_key),
            "{} {}",
            r.method,
            r.target
        );
        for (name, value) in &r.headers {
            assert!(
                !value.contains(&canaries.secret),
                "{name} carried the secret"
            );
            if value.contains(&canaries.api_key) {
                assert!(
                    name.eq_ignore_ascii_case("authorization"),
                    "{name} carried the API key"
                );
            }
        }
        assert!(
            !r.body.contains(&canaries.api_key),
            "a body carried the API key"
        );
        if r.body.contains(&canaries.secret) {
            assert!(
                r.method == "PUT"
                    && r.target == format!("/v1/services/{}/env-vars", stub::SERVICE_ID),
                "the secret went to {} {}",
                r.method,
                r.target
            );
        }
    }
}

#[test]
fn check_service_finds_missing_unknown_and_malformed_without_showing_a_secret() {
    let canaries = Canaries::new("check");
    let mut env = healthy(&canaries.secret);
    env.retain(|(k, _)| k != "SUPABASE_JWT_SECRET" && k != "DATABASE_URL");
    env.push(("SUPABASE_JWT_SECERT".into(), canaries.secret.clone()));
    // Malformed, and a secret: validated, never shown.
    env.push((
        "DATABASE_URL".into(),
        format!("postgres//app:{}@db", canaries.secret),
    ));
    env.push(("PORT".into(), "eighty".into()));
    let stub = start(&canaries, env);
    let root = repo_root();
    let x = xtask(&root, &stub, &canaries);

    let out = run(&x, &["env", "check", "--service"], &canaries);
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    for expected in [
        "target production",
        "SUPABASE_JWT_SECRET is missing on the service",
        "(SUPABASE_JWT_SECERT is set instead: did you mean SUPABASE_JWT_SECRET? names must match exactly) — fix: rename SUPABASE_JWT_SECERT to SUPABASE_JWT_SECRET",
        "SUPABASE_JWT_SECERT is set on the service but is not in the env spec; did you mean SUPABASE_JWT_SECRET? — fix:",
        "DATABASE_URL on the service is malformed: it must be a postgres:// URL",
        "PORT on the service is malformed: it must be an integer from 1 to 65535 — fix:",
        "eighty",
        "4 problem(s)",
    ] {
        assert!(all.contains(expected), "{expected:?} in:\n{all}");
    }
    let problem_lines = all.lines().filter(|l| l.starts_with("problem: ")).count();
    assert_eq!(problem_lines, 4, "{all}");

    let out = run(&x, &["env", "check", "--service", "--json"], &canaries);
    assert!(!out.status.success());
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["ok"], false);
    let mut names: Vec<&str> = value["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "DATABASE_URL",
            "PORT",
            "SUPABASE_JWT_SECERT",
            "SUPABASE_JWT_SECRET"
        ]
    );
    let secret_row = value["variables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "SUPABASE_JWT_SECERT")
        .unwrap();
    assert_eq!(secret_row["secret"], true);
    assert!(secret_row["value"].as_str().unwrap().starts_with("***"));

    // Against an env file: the values that differ, by name and line.
    let dir = TempDir::new("env-remote");
    let file = dir.path().join("production.env");
    std::fs::write(&file, "LOG_LEVEL=debug\nPORT=eighty\n").unwrap();
    let out = run(
        &x,
        &[
            "env",
            "check",
            "--service",
            "--env-file",
            file.to_str().unwrap(),
        ],
        &canaries,
    );
    let all = text(&out);
    assert!(
        all.contains(&format!(
            "LOG_LEVEL is set in {}:1 but not on the service",
            file.display()
        )),
        "{all}"
    );
    assert!(!all.contains("PORT on the service differs"), "{all}");

    assert!(stub.journal().iter().all(|r| !is_write(r)), "check wrote");
    assert_journal_clean(&stub, &canaries);
}

#[test]
fn a_healthy_service_passes_the_check() {
    let canaries = Canaries::new("healthy");
    let stub = start(&canaries, healthy(&canaries.secret));
    let root = repo_root();
    let out = run(
        &xtask(&root, &stub, &canaries),
        &["env", "check", "--service"],
        &canaries,
    );
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains("ok        SUPABASE_JWT_SECRET        *** ("),
        "{all}"
    );
    assert!(
        all.contains("ok        SUPABASE_PROJECT_URL       https://abc.supabase.co"),
        "{all}"
    );
}

#[test]
fn push_shows_a_masked_diff_keeps_unknown_variables_and_prunes_only_when_asked() {
    let canaries = Canaries::new("push");
    let mut env = healthy("old-secret-value");
    env.push(("LEGACY_FEATURE_FLAG".into(), "on".into()));
    let stub = start(&canaries, env);
    let root = repo_root();
    let x = xtask(&root, &stub, &canaries);
    let dir = TempDir::new("env-remote");
    let file = dir.path().join("production.env");
    let mut lines: Vec<String> = healthy(&canaries.secret)
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    lines.push("LOG_LEVEL=debug".into());
    // The deploy machine's variable: never pushed to the service.
    lines.push(format!("RENDER_API_KEY={}", canaries.api_key));
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let f = file.to_str().unwrap();
    let before = stub.env_vars();

    // --dry-run: the diff, nothing written.
    let out = run(
        &x,
        &["env", "push", "--env-file", f, "--dry-run"],
        &canaries,
    );
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    for expected in [
        "+ LOG_LEVEL = debug",
        "~ SUPABASE_JWT_SECRET: *** (16 chars) → *** (",
        "~ DATABASE_URL: *** (",
        "  LEGACY_FEATURE_FLAG kept: not in the file (--prune would remove it)",
        "not pushed: RENDER_API_KEY",
        "1 added, 3 changed, 0 removed, 1 kept, 2 unchanged",
        "dry run: nothing was sent",
    ] {
        assert!(all.contains(expected), "{expected:?} in:\n{all}");
    }
    assert!(
        stub.journal().iter().all(|r| !is_write(r)),
        "--dry-run wrote"
    );
    assert_eq!(stub.env_vars(), before);

    // Without --prune: one request, the unknown variable kept.
    let out = run(&x, &["env", "push", "--env-file", f], &canaries);
    assert!(out.status.success(), "{}", text(&out));
    let writes: Vec<Recorded> = stub.journal().into_iter().filter(is_write).collect();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].method, "PUT");
    let now = stub.env_vars();
    assert_eq!(now["LEGACY_FEATURE_FLAG"], "on");
    assert_eq!(now["LOG_LEVEL"], "debug");
    assert_eq!(now["SUPABASE_JWT_SECRET"], canaries.secret);
    assert!(!now.contains_key("RENDER_API_KEY"));

    // With --prune: it goes.
    let out = run(
        &x,
        &["env", "push", "--env-file", f, "--prune", "--json"],
        &canaries,
    );
    assert!(out.status.success(), "{}", text(&out));
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["removed"], serde_json::json!(["LEGACY_FEATURE_FLAG"]));
    assert_eq!(value["applied"], true);
    assert!(!stub.env_vars().contains_key("LEGACY_FEATURE_FLAG"));

    // In sync: nothing sent.
    let writes = stub.journal().into_iter().filter(is_write).count();
    let out = run(&x, &["env", "push", "--env-file", f, "--prune"], &canaries);
    assert!(text(&out).contains("nothing to change"), "{}", text(&out));
    assert_eq!(stub.journal().into_iter().filter(is_write).count(), writes);
    assert_journal_clean(&stub, &canaries);
}

#[test]
fn a_bad_env_file_sends_nothing() {
    let canaries = Canaries::new("bad");
    let stub = start(&canaries, healthy("old"));
    let root = repo_root();
    let x = xtask(&root, &stub, &canaries);
    let dir = TempDir::new("env-remote");
    let file = dir.path().join("bad.env");
    std::fs::write(
        &file,
        format!("SUPABASE_JWT_SECERT={}\nPORT=eighty\n", canaries.secret),
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let out = run(&x, &["env", "push", "--env-file", f], &canaries);
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    for expected in [
        format!(
            "{f}:1: SUPABASE_JWT_SECERT is not in the env spec; did you mean SUPABASE_JWT_SECRET?"
        ),
        format!("{f}:2: PORT is malformed"),
        "nothing was sent".to_owned(),
    ] {
        assert!(all.contains(&expected), "{expected:?} in:\n{all}");
    }
    assert!(stub.journal().is_empty(), "{:?}", stub.journal());

    // Valid, but the service would lose a required variable: refused after reading only.
    std::fs::write(&file, "LOG_LEVEL=debug\n").unwrap();
    let out = run(&x, &["env", "push", "--env-file", f, "--prune"], &canaries);
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    assert!(
        all.contains(&format!(
            "SUPABASE_JWT_SECRET is required for production and {f} lacks it: add SUPABASE_JWT_SECRET=… to {f}"
        )),
        "{all}"
    );
    assert!(stub.journal().iter().all(|r| !is_write(r)));
    assert_eq!(stub.env_vars()["SUPABASE_JWT_SECRET"], "old");
}

/// The client's env var calls against the stub: every page of the list, a set, a delete.
#[test]
fn the_env_var_api_pages_sets_and_deletes() {
    let env: Vec<(String, String)> = (0..130)
        .map(|i| (format!("EXTRA_{i:03}"), format!("v{i}")))
        .collect();
    let stub = Stub::start(Scenario {
        api_key: "rnd_pages".into(),
        env_vars: Vec::new(),
        env_values: env,
        ..Scenario::default()
    })
    .unwrap();
    let client = xtask_core::https::Client::new(xtask_core::https::Timeouts::default()).unwrap();
    let api = xtask_core::render::Api::new(&stub.api_url(), "rnd_pages", client);
    let vars = api.env_vars(stub::SERVICE_ID).unwrap();
    assert_eq!(vars.len(), 130);
    assert_eq!(vars["EXTRA_129"], "v129");
    let lists: Vec<String> = stub
        .journal()
        .into_iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.target)
        .collect();
    assert_eq!(lists.len(), 2, "{lists:?}");
    assert!(lists[1].ends_with("&cursor=EXTRA_099"), "{lists:?}");

    api.set_env_var(stub::SERVICE_ID, "EXTRA_000", "changed")
        .unwrap();
    api.delete_env_var(stub::SERVICE_ID, "EXTRA_001").unwrap();
    let now = stub.env_vars();
    assert_eq!(now["EXTRA_000"], "changed");
    assert!(!now.contains_key("EXTRA_001"));
    let replaced = api
        .replace_env_vars(
            stub::SERVICE_ID,
            &BTreeMap::from([("ONLY".to_owned(), "one".to_owned())]),
        )
        .unwrap();
    assert_eq!(replaced.len(), 1);
    assert_eq!(stub.env_vars().len(), 1);
}

/// The production database: Supabase's bootstrap, TLS only (hostssl rules).
fn production_db() -> openeu_testdb::Server {
    let root = repo_root();
    openeu_testdb::Server::start_tls(&[root.join("supabase/local/supabase-compat.sql")], "")
}

#[test]
fn doctor_remote_checks_render_the_registry_and_the_database() {
    let canaries = Canaries::new("doctor");
    let registry_password = format!("c4nary-registry-{}-pw", std::process::id());
    let registry = Registry::with_password("ci", &registry_password);
    let db = production_db();
    let ca = db.tls().unwrap().ca.clone();
    let db_url = format!(
        "postgres://postgres:{}@127.0.0.1:{}/postgres?sslmode=verify-full&sslrootcert={}",
        canaries.secret,
        db.port,
        ca.display()
    );
    let stub = start(&canaries, healthy(&canaries.secret));
    let root = repo_root();
    let base = || {
        xtask(&root, &stub, &canaries)
            .env("DOCKER_REGISTRY_SERVER", &registry.address)
            .env("DOCKER_REGISTRY_USERNAME", "ci")
    };

    let out = run(
        &base()
            .env("DOCKER_REGISTRY_PASSWORD", &registry_password)
            .env("PRODUCTION_DATABASE_URL", &db_url),
        &["doctor", "--remote"],
        &canaries,
    );
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    for expected in [
        "ok      render api key",
        &format!("ok      render service {}", stub::SERVICE_ID),
        "not suspended, Git-backed",
        "ok      render env vars",
        &format!("ok      registry credentials {}", registry.address),
        "user ci logged in",
        "ok      production database",
        "reachable over TLS",
        "ok      migration history",
        "pending",
    ] {
        assert!(all.contains(expected), "{expected:?} in:\n{all}");
    }
    assert!(!all.contains(&registry_password), "{all}");

    // Everything broken at once: one failing line each, with its fix, and a non-zero exit.
    stub.update(|s| s.suspended = true);
    openeu_testdb::psql(
        db.port,
        "create schema if not exists supabase_migrations; \
         create table if not exists supabase_migrations.schema_migrations (version text primary key, name text, statements text[]); \
         insert into supabase_migrations.schema_migrations (version, name) values ('19990101000000', 'elsewhere');",
    );
    let out = run(
        &base()
            .env("DOCKER_REGISTRY_PASSWORD", "wrong-password")
            .env("PRODUCTION_DATABASE_URL", &db_url),
        &["doctor", "--remote", "--json"],
        &canaries,
    );
    assert!(!out.status.success(), "{}", text(&out));
    let checks: Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed: BTreeMap<String, String> = checks
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                format!("{} — fix: {}", c["detail"], c["fix"]),
            )
        })
        .collect();
    let names: Vec<&str> = failed.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "migration history",
            &format!("registry credentials {}", registry.address),
            &format!("render service {}", stub::SERVICE_ID),
        ],
        "{failed:?}"
    );
    assert!(
        failed["migration history"].contains("19990101000000"),
        "{failed:?}"
    );
    assert!(
        failed[&format!("render service {}", stub::SERVICE_ID)].contains("resume it"),
        "{failed:?}"
    );

    // Plaintext to a TLS-only server, and a wrong API key.
    let plaintext = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=disable",
        db.port
    );
    let out = run(
        &xtask(&root, &stub, &canaries)
            .env("RENDER_API_KEY", "rnd_wrong")
            .env("PRODUCTION_DATABASE_URL", &plaintext),
        &["doctor", "--remote"],
        &canaries,
    );
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    for expected in [
        "FAIL    render api key",
        "check RENDER_API_KEY",
        "FAIL    production database",
        "no encryption — fix: the server requires TLS: add ?sslmode=verify-full",
    ] {
        assert!(all.contains(expected), "{expected:?} in:\n{all}");
    }

    // Nothing listens: unreachable, with the fix.
    let closed = format!("postgres://postgres@127.0.0.1:{}/postgres", free_port());
    let out = run(
        &xtask(&root, &stub, &canaries).env("PRODUCTION_DATABASE_URL", &closed),
        &["doctor", "--remote"],
        &canaries,
    );
    assert!(
        text(&out).contains("— fix: check PRODUCTION_DATABASE_URL"),
        "{}",
        text(&out)
    );
    assert!(stub.journal().iter().all(|r| !is_write(r)), "doctor wrote");
    assert_journal_clean(&stub, &canaries);
}
