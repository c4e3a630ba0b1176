//! `cargo xtask deploy` and `db push` against a stub of Render's API (xtask-stubs' render.rs)
//! with real parts wherever one runs here: a git repository with a pushed
//! HEAD, a real PostgreSQL as the production database, and in the end-to-end test the real
//! authenticated registry, the real app image started from the pushed digest (so the version check
//! sees a real git sha) and the real Supabase CLI reading the migration history.

use std::{
    path::Path,
    process::{Output, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use serde_json::Value;
use xtask_stubs::render::{self as stub, OnLive, Scenario, Stub};

use crate::support::{
    DockerCleanup, Registry, TempDir, Xtask, docker, free_port, git, repo_copy, text,
};

const API_KEY: &str = "rnd_test_key";

/// A copy of the repository as its own git repository, HEAD pushed to a bare remote, with the
/// Dockerfile's pin naming the copy's base hash (the committed pin may lag behind a lockfile
/// change until the lead re-pins; the deploy's preflight checks the tag).
struct Repo {
    dir: TempDir,
    _remote: TempDir,
    head: String,
}

impl Repo {
    fn new() -> Repo {
        let dir = repo_copy();
        let root = crate::support::repo_root();
        std::fs::copy(root.join(".env.example"), dir.path().join(".env.example")).unwrap();
        let ws = xtask_core::workspace::Workspace::open(Some(dir.path().to_path_buf()), Vec::new())
            .unwrap();
        let tag = xtask_images::base::compute(&ws).unwrap().tag().to_owned();
        let dockerfile = dir.path().join("Dockerfile");
        let text = std::fs::read_to_string(&dockerfile).unwrap();
        let text: Vec<String> = text
            .lines()
            .map(|l| {
                if l.starts_with("ARG BASE_IMAGE=") {
                    format!(
                        "ARG BASE_IMAGE=127.0.0.1:5000/openeu-backend-base:{tag}@sha256:{}",
                        "0".repeat(64)
                    )
                } else {
                    l.to_owned()
                }
            })
            .collect();
        std::fs::write(&dockerfile, text.join("\n") + "\n").unwrap();
        std::fs::write(dir.path().join(".gitignore"), "target/\n").unwrap();
        let remote = TempDir::new("remote");
        git(remote.path(), &["init", "-q", "--bare"]);
        git(dir.path(), &["init", "-q", "-b", "main"]);
        git(dir.path(), &["add", "-A"]);
        git(dir.path(), &["commit", "-q", "-m", "deploy test"]);
        git(
            dir.path(),
            &["remote", "add", "origin", remote.path().to_str().unwrap()],
        );
        git(dir.path(), &["push", "-q", "origin", "main"]);
        git(dir.path(), &["fetch", "-q", "origin"]);
        let head = git(dir.path(), &["rev-parse", "HEAD"]);
        Repo {
            dir,
            _remote: remote,
            head,
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn short(&self) -> String {
        self.head[..12].to_owned()
    }
}

/// The production database: Supabase's bootstrap only, so every migration is pending.
fn production_db() -> openeu_testdb::Server {
    let root = crate::support::repo_root();
    openeu_testdb::Server::start(&[root.join("supabase/local/supabase-compat.sql")], "")
}

fn db_url(db: &openeu_testdb::Server, password: &str) -> String {
    format!(
        "postgres://postgres:{password}@127.0.0.1:{}/postgres",
        db.port
    )
}

/// An image-backed scenario whose stub plays the app, reporting `version` once live.
fn image_scenario(repo: &Repo) -> Scenario {
    Scenario {
        api_key: API_KEY.to_owned(),
        image_path: Some("127.0.0.1:5000/openeu-backend:latest".to_owned()),
        image_version: repo.short(),
        ..Scenario::default()
    }
}

const PUSHED: &str = "127.0.0.1:5000/openeu-backend@sha256:1111111111111111111111111111111111111111111111111111111111111111";

fn xtask<'a>(repo: &'a Repo, stub: &Stub, db: &str) -> Xtask<'a> {
    Xtask::new(repo.path())
        .env("RENDER_API_KEY", API_KEY)
        .env("RENDER_SERVICE_ID", stub::SERVICE_ID)
        .env("RENDER_API_URL", &stub.api_url())
        .env("PRODUCTION_DATABASE_URL", db)
}

/// As Render would: runs exactly the deployed digest, on the URL the service reports, against
/// the production database.
fn run_deployed(deploy: &Value, name: &str, label: &str, app_port: u16, db_port: u16) {
    let image = deploy["image"]["ref"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let _ = docker(&["rm", "-f", name]);
    let out = docker(&[
        "run",
        "-d",
        "--name",
        name,
        "--label",
        label,
        "--network",
        "host",
        "-e",
        &format!("PORT={app_port}"),
        "-e",
        "ENVIRONMENT=local",
        "-e",
        "SUPABASE_JWT_SECRET=deploy-test-jwt-secret",
        "-e",
        &format!("DATABASE_URL=postgres://postgres@127.0.0.1:{db_port}/postgres"),
        &image,
    ]);
    assert!(
        out.status.success(),
        "docker run {image}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", text(out)))
}

fn new_deploys(stub: &Stub) -> Vec<Value> {
    stub.deploys()
        .into_iter()
        .filter(|d| {
            d["trigger"] == "api" || d["trigger"] == "deploy_hook" || d["trigger"] == "rollback"
        })
        .collect()
}

#[test]
fn deploy_of_a_pushed_image_goes_live_applies_migrations_and_verifies() {
    let repo = Repo::new();
    let db = production_db();
    let stub = Stub::start(image_scenario(&repo)).unwrap();
    let out = xtask(&repo, &stub, &db.url()).output(&[
        "deploy",
        "--image",
        PUSHED,
        "--skip-smoke",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
    assert_eq!(report["status"], "live");
    assert_eq!(report["image"], PUSHED);
    assert_eq!(report["commit"], repo.head.as_str());
    assert_eq!(report["smoke"]["skipped"], true);
    assert_eq!(report["smoke"]["ran"], false);
    assert!(report["phases"]["wait"].as_f64().is_some(), "{report}");
    let applied = report["migrations_applied"].as_array().unwrap();
    assert!(!applied.is_empty(), "{report}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("build_in_progress") && stderr.contains("update_in_progress"),
        "each status change is printed:\n{stderr}"
    );
    // The trigger sent the digest, and only once.
    let triggers: Vec<_> = stub
        .journal()
        .into_iter()
        .filter(|r| r.method == "POST" && r.target.ends_with("/deploys"))
        .collect();
    assert_eq!(triggers.len(), 1);
    assert_eq!(
        serde_json::from_str::<Value>(&triggers[0].body).unwrap()["imageUrl"],
        PUSHED
    );
    // The history is in the CLI's format, and a second deploy has nothing to apply.
    let history = openeu_testdb::psql(
        db.port,
        "select version, name, array_length(statements, 1) > 0 from supabase_migrations.schema_migrations",
    );
    assert!(history.contains("|openeu_schema|t"), "{history}");
    let (stdout, _) = xtask(&repo, &stub, &db.url()).ok(&["db", "push", "--dry-run"]);
    assert!(stdout.contains("up to date"), "{stdout}");
}

#[test]
fn every_failure_status_exits_3_with_the_status_and_the_logs() {
    let repo = Repo::new();
    let db = production_db();
    for status in [
        "build_failed",
        "update_failed",
        "pre_deploy_failed",
        "canceled",
    ] {
        let stub = Stub::start(Scenario {
            statuses: vec!["build_in_progress".to_owned(), status.to_owned()],
            ..image_scenario(&repo)
        })
        .unwrap();
        let out =
            xtask(&repo, &stub, &db.url()).output(&["deploy", "--image", PUSHED, "--skip-smoke"]);
        let text = text(&out);
        assert_eq!(out.status.code(), Some(3), "{status}: {text}");
        if status == "canceled" {
            assert!(
                text.contains("was canceled on Render") && text.contains("no newer deploy"),
                "{text}"
            );
        } else {
            assert!(text.contains(&format!("({status})")), "{text}");
        }
        assert!(
            text.contains("stub build log line 60\n")
                && text.contains("stub build log line 11\n")
                && !text.contains("stub build log line 10\n"),
            "the last 50 log lines: {text}"
        );
        assert!(text.contains("production still runs"), "{text}");
    }
}

/// A deploy that a newer one overrode (Render's auto-deploy of a later push cancels the one in
/// progress) names the deploy that replaced it: its id, trigger and commit.
#[test]
fn an_overridden_deploy_names_the_newer_deploy_its_trigger_and_commit() {
    let repo = Repo::new();
    let db = production_db();
    let newer = "abcdef0123456789abcdef0123456789abcdef01";
    let stub = Stub::start(Scenario {
        statuses: vec!["build_in_progress".to_owned(), "canceled".to_owned()],
        overridden_by: Some(newer.to_owned()),
        ..image_scenario(&repo)
    })
    .unwrap();
    let out = xtask(&repo, &stub, &db.url()).output(&["deploy", "--image", PUSHED, "--skip-smoke"]);
    let text = text(&out);
    assert_eq!(out.status.code(), Some(3), "{text}");
    let ours = new_deploys(&stub);
    let replacement = stub
        .deploys()
        .into_iter()
        .find(|d| d["trigger"] == "new_commit")
        .expect("the stub's overriding deploy");
    let sentence = format!(
        "deploy {} was canceled: Render replaced it with the newer deploy {} (trigger new_commit, commit abcdef012345; now build_in_progress)",
        ours[0]["id"].as_str().unwrap(),
        replacement["id"].as_str().unwrap()
    );
    assert!(text.contains(&sentence), "{sentence}\n{text}");
}

#[test]
fn a_deploy_that_never_finishes_times_out_with_exit_4() {
    let repo = Repo::new();
    let db = production_db();
    let stub = Stub::start(Scenario {
        statuses: vec!["build_in_progress".to_owned()],
        ..image_scenario(&repo)
    })
    .unwrap();
    let out = xtask(&repo, &stub, &db.url()).output(&[
        "deploy",
        "--image",
        PUSHED,
        "--skip-smoke",
        "--timeout",
        "2s",
    ]);
    let text = text(&out);
    assert_eq!(out.status.code(), Some(4), "{text}");
    assert!(
        text.contains("goes on at Render") && text.contains("cargo xtask deploy status"),
        "{text}"
    );
}

#[test]
fn rate_limits_intermittent_502s_and_a_lost_trigger_answer_make_one_deploy() {
    let repo = Repo::new();
    let db = production_db();
    for reset_as_timestamp in [false, true] {
        let stub = Stub::start(Scenario {
            rate_limited_first: 2,
            reset_as_timestamp,
            fail_every: 5,
            lose_trigger_answer: true,
            ..image_scenario(&repo)
        })
        .unwrap();
        let out =
            xtask(&repo, &stub, &db.url()).output(&["deploy", "--image", PUSHED, "--skip-smoke"]);
        let text = text(&out);
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert!(text.contains("rate limited by Render (429)"), "{text}");
        assert!(text.contains("answer was lost"), "{text}");
        assert_eq!(new_deploys(&stub).len(), 1, "no duplicate deploy: {text}");
        assert_eq!(
            stub.triggers(),
            1,
            "the lost trigger was not retried blindly"
        );
    }
}

#[test]
fn a_queued_trigger_202_is_found_by_listing() {
    let repo = Repo::new();
    let db = production_db();
    let stub = Stub::start(Scenario {
        trigger_queued: true,
        statuses: vec![
            "queued".to_owned(),
            "build_in_progress".to_owned(),
            "live".to_owned(),
        ],
        ..image_scenario(&repo)
    })
    .unwrap();
    let out = xtask(&repo, &stub, &db.url()).output(&["deploy", "--image", PUSHED, "--skip-smoke"]);
    let text = text(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("queued the deploy (202)"), "{text}");
    assert!(
        stub.journal()
            .iter()
            .any(|r| r.method == "GET" && r.target.contains("status=queued"))
    );
}

#[test]
fn a_deploy_in_progress_is_refused_or_waited_for() {
    let repo = Repo::new();
    let db = production_db();
    let stub = Stub::start(Scenario {
        running_deploy: Some(3),
        ..image_scenario(&repo)
    })
    .unwrap();
    let out = xtask(&repo, &stub, &db.url()).output(&["deploy", "--image", PUSHED, "--skip-smoke"]);
    let text = text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("another deploy of") && text.contains("--wait-for-running"),
        "{text}"
    );
    assert_eq!(stub.triggers(), 0, "nothing was triggered");
    let out = xtask(&repo, &stub, &db.url()).output(&[
        "deploy",
        "--image",
        PUSHED,
        "--skip-smoke",
        "--wait-for-running",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", self::text(&out));
    assert_eq!(stub.triggers(), 1);
}

#[test]
fn a_live_deploy_that_fails_verification_is_rolled_back() {
    let repo = Repo::new();
    let db = production_db();
    // The app keeps reporting the old version: the new container never took the traffic.
    let old = "0000000000000000000000000000000000000002"[..12].to_owned();
    let stub = Stub::start(Scenario {
        app_version: Some(old.clone()),
        ..image_scenario(&repo)
    })
    .unwrap();
    let out = xtask(&repo, &stub, &db.url()).output(&[
        "deploy",
        "--image",
        PUSHED,
        "--skip-smoke",
        "--verify-timeout",
        "2s",
        "--rollback-on-failure",
        "--json",
    ]);
    let text = text(&out);
    assert_eq!(out.status.code(), Some(6), "{text}");
    let report = json(&out);
    assert_eq!(report["exit_code"], 6);
    assert!(
        report["error"].as_str().unwrap().contains("rolled back to"),
        "{report}"
    );
    let rollbacks: Vec<_> = stub
        .deploys()
        .into_iter()
        .filter(|d| d["trigger"] == "rollback")
        .collect();
    assert_eq!(rollbacks.len(), 1);
    assert_eq!(rollbacks[0]["status"], "live");

    // Without --rollback-on-failure: exit 5, and the advice.
    let stub = Stub::start(Scenario {
        app_version: Some(old),
        ..image_scenario(&repo)
    })
    .unwrap();
    let out = xtask(&repo, &stub, &db.url()).output(&[
        "deploy",
        "--image",
        PUSHED,
        "--skip-smoke",
        "--verify-timeout",
        "2s",
    ]);
    let text = self::text(&out);
    assert_eq!(out.status.code(), Some(5), "{text}");
    assert!(text.contains("cargo xtask deploy rollback"), "{text}");

    // `deploy rollback` then goes back to the newest earlier deploy with other contents.
    let out = xtask(&repo, &stub, &db.url()).output(&["deploy", "rollback", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", self::text(&out));
    assert_eq!(json(&out)["status"], "live");
    let (list, _) = xtask(&repo, &stub, &db.url()).ok(&["deploy", "list", "--json"]);
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list[0]["trigger"], "rollback");
    let (status, _) = xtask(&repo, &stub, &db.url()).ok(&["deploy", "status"]);
    assert!(
        status.contains("live") && status.contains("HTTP 200"),
        "{status}"
    );
    let (logs, _) = xtask(&repo, &stub, &db.url()).ok(&["deploy", "logs", "--tail", "5"]);
    assert!(logs.contains("stub build log line"), "{logs}");
}

/// `deploy --target T` finds T's service in `service-id` of `[workspace.metadata.xtask.render]`;
/// `RENDER_SERVICE_ID` overrides it; a missing target or a malformed id is named with Cargo.toml
/// and the key.
#[test]
fn service_ids_per_target_come_from_the_manifest_and_the_env_var_overrides_them() {
    let dir = repo_copy();
    let manifest = dir.path().join("Cargo.toml");
    let original = std::fs::read_to_string(&manifest).unwrap();
    let with_ids = |ids: &str| {
        std::fs::write(
            &manifest,
            format!("{original}\n[workspace.metadata.xtask.render]\nservice-id = {{ {ids} }}\n"),
        )
        .unwrap();
    };
    let stub = Stub::start(Scenario {
        api_key: API_KEY.to_owned(),
        ..Scenario::default()
    })
    .unwrap();
    let run = |service_env: Option<&str>, args: &[&str]| -> Output {
        let mut cmd = Xtask::new(dir.path())
            .env("RENDER_API_KEY", API_KEY)
            .env("RENDER_API_URL", &stub.api_url())
            .command(args);
        match service_env {
            Some(id) => cmd.env("RENDER_SERVICE_ID", id),
            None => cmd.env_remove("RENDER_SERVICE_ID"),
        };
        cmd.output().unwrap()
    };
    let service_of = |out: &Output| -> String {
        assert_eq!(out.status.code(), Some(0), "{}", text(out));
        json(out)["service"].as_str().unwrap().to_owned()
    };

    with_ids(&format!(
        "production = \"srv-elsewhere1\", staging = \"{}\"",
        stub::SERVICE_ID
    ));
    // The staging target's id, from the manifest alone.
    let out = run(None, &["deploy", "status", "--target", "staging", "--json"]);
    assert_eq!(service_of(&out), stub::SERVICE_ID);
    // The env var overrides the manifest's production id.
    let out = run(Some(stub::SERVICE_ID), &["deploy", "status", "--json"]);
    assert_eq!(service_of(&out), stub::SERVICE_ID);
    // Production from the manifest asks Render about the other service (the stub knows only one).
    let out = run(None, &["deploy", "list", "--json"]);
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("srv-elsewhere1"), "{}", text(&out));
    assert!(
        stub.journal()
            .iter()
            .any(|r| r.target.contains("srv-elsewhere1")),
        "the manifest's production id was asked for"
    );

    // A target the manifest does not name, without the env var.
    let out = run(None, &["deploy", "status", "--target", "qa"]);
    let message = text(&out);
    assert_ne!(out.status.code(), Some(0), "{message}");
    assert!(
        message.contains("no Render service for target qa")
            && message.contains("RENDER_SERVICE_ID")
            && message.contains("[workspace.metadata.xtask.render] service-id in Cargo.toml (it names production, staging)"),
        "{message}"
    );

    // A malformed id is refused even when the env var would override it.
    with_ids("production = \"srv-ok1\", staging = \"SRV-Bad\"");
    let out = run(Some(stub::SERVICE_ID), &["deploy", "status"]);
    let message = text(&out);
    assert_ne!(out.status.code(), Some(0), "{message}");
    assert!(
        message.contains(
            "Cargo.toml: [workspace.metadata.xtask.render] service-id.staging = \"SRV-Bad\" is not a Render service id"
        ),
        "{message}"
    );
}

#[test]
fn preflight_reports_every_problem_at_once_and_changes_nothing() {
    let repo = Repo::new();
    let db = production_db();
    let mut scenario = image_scenario(&repo);
    scenario.suspended = true;
    scenario.env_vars.retain(|n| n != "SUPABASE_JWT_SECRET");
    scenario.env_vars.push("SUPABASE_JWT_SECRT".to_owned());
    let stub = Stub::start(scenario).unwrap();
    std::fs::write(repo.path().join("README.md"), "dirty").unwrap();
    git(repo.path(), &["add", "README.md"]);
    let out = xtask(&repo, &stub, &db.url()).output(&["deploy", "--image", PUSHED]);
    let text = text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    for expected in [
        "uncommitted changes",
        "is suspended",
        "SUPABASE_JWT_SECRT is set instead: did you mean SUPABASE_JWT_SECRET?",
    ] {
        assert!(text.contains(expected), "{expected}: {text}");
    }
    assert_eq!(stub.triggers(), 0);
    let applied = openeu_testdb::psql(
        db.port,
        "select count(*) from supabase_migrations.schema_migrations",
    );
    assert_eq!(applied, "0", "no migration was applied");

    // A wrong key is named with its fix, never echoed.
    let out = xtask(&repo, &stub, &db.url())
        .env("RENDER_API_KEY", "rnd_wrong_key_value")
        .output(&["deploy", "--image", PUSHED, "--allow-dirty"]);
    let text = self::text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("check RENDER_API_KEY"), "{text}");
    assert!(
        text.contains("--allow-dirty is refused for production"),
        "{text}"
    );
    assert!(!text.contains("rnd_wrong_key_value"), "{text}");
}

#[test]
fn git_backed_services_deploy_the_pushed_commit_and_need_the_pinned_base() {
    let repo = Repo::new();
    let db = production_db();
    let stub = Stub::start(Scenario {
        api_key: API_KEY.to_owned(),
        ..Scenario::default()
    })
    .unwrap();
    // The copy's pin names a base that no registry has: Render's build would fail.
    let registry = Registry::start();
    let out = xtask(&repo, &stub, &db.url())
        .env("DOCKER_REGISTRY_SERVER", &registry.address)
        .output(&["deploy", "--skip-smoke"]);
    let text = text(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("is not in the registry"), "{text}");
    // The plan of a dry run: what is live, what would ship, the pending migrations. Against the
    // same empty registry: the machine's own registry may well hold the pinned base.
    let out = xtask(&repo, &stub, &db.url())
        .env("DOCKER_REGISTRY_SERVER", &registry.address)
        .output(&["deploy", "--dry-run", "--json"]);
    let report = json(&out);
    assert_eq!(report["plan"]["kind"], "git", "{report}");
    assert!(
        report["plan"]["notes"][0]
            .as_str()
            .unwrap()
            .contains("cargo xtask base build --push"),
        "the plan says a base push is needed: {report}"
    );
    assert!(
        report["plan"]["deploy"]
            .as_str()
            .unwrap()
            .contains(&repo.head),
        "{report}"
    );
    assert!(
        !report["plan"]["pending_migrations"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn two_deploys_at_once_the_second_refuses_naming_the_holder() {
    let repo = Repo::new();
    let db = production_db();
    let stub = Stub::start(Scenario {
        statuses: vec!["build_in_progress".to_owned()],
        ..image_scenario(&repo)
    })
    .unwrap();
    let x = xtask(&repo, &stub, &db.url());
    let mut first = x
        .command(&[
            "deploy",
            "--image",
            PUSHED,
            "--skip-smoke",
            "--timeout",
            "20s",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    crate::support::wait_until(
        "the first deploy to trigger",
        Duration::from_secs(60),
        || stub.triggers() == 1,
    );
    let out = x.output(&["deploy", "--image", PUSHED, "--skip-smoke"]);
    let text = text(&out);
    let _ = first.kill();
    let _ = first.wait();
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("holds the deploy lock") && text.contains(&repo.short()),
        "the holder and its commit are named: {text}"
    );
    assert_eq!(stub.triggers(), 1, "the second deploy triggered nothing");
    // The first deployer is gone: its session ended and the lock with it.
    crate::support::wait_until("the lock to be released", Duration::from_secs(10), || {
        openeu_testdb::psql(
            db.port,
            "select count(*) from pg_locks where locktype = 'advisory'",
        ) == "0"
    });
}

#[test]
fn db_push_refuses_drift_and_out_of_order_and_stops_at_the_first_error() {
    let repo = Repo::new();
    let db = production_db();
    let x = Xtask::new(repo.path());
    let url = db_url(&db, "unused");
    // Drift: the database has a version the repository lacks.
    openeu_testdb::psql(
        db.port,
        "insert into supabase_migrations.schema_migrations (version) values ('20990101000000')",
    );
    let text = x.fails(&["db", "push", "--db-url", &url]);
    assert!(
        text.contains("20990101000000") && text.contains("lacks"),
        "{text}"
    );
    // Out of order: a pending migration older than the newest applied.
    openeu_testdb::psql(
        db.port,
        "update supabase_migrations.schema_migrations set version = '20261127000001'",
    );
    std::fs::write(
        repo.path()
            .join("supabase/migrations/20261127000001_later.sql"),
        "select 1;\n",
    )
    .unwrap();
    let text = x.fails(&["db", "push", "--db-url", &url]);
    assert!(
        text.contains("older than the newest applied")
            && text.contains("20261127000000_openeu_schema.sql"),
        "{text}"
    );
    // A broken migration: named with its line, nothing of it applied, later ones not tried.
    openeu_testdb::psql(db.port, "delete from supabase_migrations.schema_migrations");
    std::fs::write(
        repo.path()
            .join("supabase/migrations/20261127000001_later.sql"),
        "create table broken_a (id int);\nselect nonsense from nowhere;\n",
    )
    .unwrap();
    std::fs::write(
        repo.path()
            .join("supabase/migrations/20261127000002_after.sql"),
        "create table after_b (id int);\n",
    )
    .unwrap();
    let text = x.fails(&["db", "push", "--db-url", &url]);
    assert!(text.contains("20261127000001_later.sql:2"), "{text}");
    let tables = openeu_testdb::psql(
        db.port,
        "select count(*) from pg_tables where tablename in ('broken_a', 'after_b')",
    );
    assert_eq!(tables, "0");
    let versions = openeu_testdb::psql(
        db.port,
        "select string_agg(version, ',' order by version) from supabase_migrations.schema_migrations",
    );
    assert_eq!(
        versions, "20261127000000",
        "the first one applied, in its own transaction"
    );
}

/// A migration that ends its own transaction would be half-applied by a push (psql's
/// `--single-transaction` only wraps the file) and really applied by the preflight's
/// `begin … rollback` check. Every command that applies migrations refuses it before anything
/// runs, naming the file and line.
#[test]
fn a_migration_that_commits_is_refused_before_anything_runs() {
    let repo = Repo::new();
    let db = production_db();
    std::fs::write(
        repo.path()
            .join("supabase/migrations/20990101000000_txn.sql"),
        "create table txn_a (i int);\n-- the next statement ends the transaction:\nCOMMIT;\ncreate table txn_b (i int);\nselect 1/0;\n",
    )
    .unwrap();
    git(repo.path(), &["add", "-A"]);
    git(
        repo.path(),
        &["commit", "-q", "-m", "a migration that commits"],
    );
    let refused = |text: &str| {
        assert!(
            text.contains("20990101000000_txn.sql:3: `COMMIT`")
                && text.contains("nothing was applied"),
            "{text}"
        );
    };
    let url = db_url(&db, "unused");
    let x = Xtask::new(repo.path());
    refused(&x.fails(&["db", "push", "--db-url", &url]));
    refused(&x.fails(&["db", "reset", "--db-url", &url]));
    refused(&x.fails(&["seed", "--check"]));
    let stub = Stub::start(image_scenario(&repo)).unwrap();
    let out = xtask(&repo, &stub, &db.url()).output(&["deploy", "--image", PUSHED, "--skip-smoke"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    refused(&text(&out));
    // Nothing ran: not the migration before it either, and no history row.
    let tables = openeu_testdb::psql(
        db.port,
        "select count(*) from pg_tables where tablename in ('txn_a', 'txn_b', 'meetings')",
    );
    assert_eq!(tables, "0");
    assert!(new_deploys(&stub).is_empty());
}

/// Everything real: the image is built and pushed to an htpasswd registry with the password
/// through stdin, the stub's deploy goes live by starting the pushed digest as a container
/// (the URL the stub reports), the migrations go to a real PostgreSQL, and the Supabase CLI
/// agrees with the history. Canary values must leak nowhere.
#[test]
fn end_to_end_with_real_image_registry_container_and_canaries() {
    let pid = std::process::id();
    let api_key = format!("rnd_canary_api_{pid}_k3y");
    let db_password = format!("canary_db_{pid}_pw");
    let registry_password = format!("canary_registry_{pid}_pw");
    let hook_key = format!("canary_hook_{pid}_key");
    let canaries = [&api_key, &db_password, &registry_password, &hook_key];

    let cleanup = DockerCleanup::new();
    let registry = Registry::with_password("ci", &registry_password);
    let repo = Repo::new();
    let db = production_db();
    let app_port = free_port();
    let container = format!("openeu-deploy-test-{app_port}");
    let db_port = db.port;
    let label = cleanup.label.clone();
    let started_container = Arc::new(AtomicBool::new(false));
    let started = Arc::clone(&started_container);
    let name = container.clone();
    let stub = Stub::start(Scenario {
        api_key: api_key.clone(),
        image_path: Some(format!("{}/openeu-backend:latest", registry.address)),
        service_url: Some(format!("http://127.0.0.1:{app_port}")),
        on_live: Some(OnLive(Arc::new(move |deploy: &Value| {
            run_deployed(deploy, &name, &label, app_port, db_port);
            started.store(true, Ordering::SeqCst);
        }))),
        ..Scenario::default()
    })
    .unwrap();

    let running = Arc::new(AtomicBool::new(true));
    let watchers: Vec<_> = canaries
        .iter()
        .map(|c| crate::docker_failures::watch_argv((*c).clone(), Arc::clone(&running)))
        .collect();
    let x = Xtask::new(repo.path())
        .env("RENDER_API_KEY", &api_key)
        .env("RENDER_SERVICE_ID", stub::SERVICE_ID)
        .env("RENDER_API_URL", &stub.api_url())
        .env("RENDER_DEPLOY_HOOK_URL", &stub.hook_url(&hook_key))
        .env("PRODUCTION_DATABASE_URL", &db_url(&db, &db_password))
        .env("DOCKER_REGISTRY_SERVER", &registry.address)
        .env("DOCKER_REGISTRY_USERNAME", "ci")
        .env("DOCKER_REGISTRY_PASSWORD", &registry_password)
        .label(&cleanup.label);
    let mut outputs = Vec::new();
    let out = x.output(&["deploy", "--skip-smoke", "--json"]);
    outputs.push(out.clone());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(started_container.load(Ordering::SeqCst));
    let report = json(&out);
    let image = report["image"].as_str().unwrap();
    assert!(
        image.starts_with(&format!("{}/openeu-backend@sha256:", registry.address)),
        "{report}"
    );
    // The real container answers with the real sha of the deployed commit.
    let (status, body) = crate::support::http_get(&format!("127.0.0.1:{app_port}"), "/");
    assert_eq!(status, 200);
    assert!(body.contains(&repo.short()), "{body}");

    // A second deploy through the hook (the trigger of last resort), waited on with the API.
    let out = x.output(&["deploy", "--skip-smoke", "--via-hook", "--image", image]);
    outputs.push(out.clone());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("key=***"),
        "the hook is shown masked: {}",
        text(&out)
    );

    // The Supabase CLI reads the same history.
    if let Some(cli) = supabase_cli() {
        let cli_out = std::process::Command::new(&cli)
            .args(["migration", "list", "--db-url"])
            .arg(format!(
                "postgresql://postgres@127.0.0.1:{}/postgres?sslmode=disable",
                db.port
            ))
            .current_dir(repo.path())
            .output()
            .unwrap();
        let listing = text(&cli_out);
        assert!(cli_out.status.success(), "{listing}");
        let line = listing
            .lines()
            .find(|l| l.contains("20261127000000"))
            .unwrap_or_else(|| panic!("the CLI lists the migration: {listing}"));
        assert_eq!(
            line.matches("20261127000000").count(),
            2,
            "local and remote agree: {listing}"
        );
    } else {
        eprintln!("supabase CLI not installed (cargo xtask setup installs it): skipped its check");
    }

    running.store(false, Ordering::Relaxed);
    for watcher in watchers {
        let hits = watcher.join().unwrap();
        assert!(
            hits.is_empty(),
            "a canary appeared in a process's argv: {hits:?}"
        );
    }
    for out in &outputs {
        let all = text(out);
        for canary in canaries {
            assert!(
                !all.contains(canary.as_str()),
                "a canary leaked into the output"
            );
        }
    }
    for request in stub.journal() {
        let mut seen = format!("{} {} {}", request.method, request.target, request.body);
        for (name, value) in &request.headers {
            if !name.eq_ignore_ascii_case("authorization") {
                seen.push_str(value);
            }
        }
        for canary in [&api_key, &db_password, &registry_password] {
            assert!(
                !seen.contains(canary.as_str()),
                "a canary reached the stub outside Authorization: {seen}"
            );
        }
    }
    assert!(stub.journal().iter().any(|r| {
        r.headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("authorization") && v.contains(&api_key))
    }));
    let ws = xtask_core::workspace::Workspace::open(Some(repo.path().to_path_buf()), Vec::new())
        .unwrap();
    for dir in [
        repo.path().join("target"),
        ws.target_dir().unwrap().join("xtask"),
        xtask_core::workspace::state_dir().unwrap().join("logs"),
    ] {
        assert_no_canary_in_tree(&dir, &canaries);
    }
    let _ = docker(&["rm", "-f", &container]);
}

/// A deploy with smoke on (no --skip-smoke): the image the local smoke stack ran is exactly the
/// image Render was given. The smoke stack's app container is watched from outside while the
/// deploy runs, and its image id must be the id of the digest in the trigger's `imageUrl` (the
/// stub's journal) and of the container the stub started for `live`.
#[test]
fn deploy_with_smoke_ships_the_digest_of_the_image_smoke_tested() {
    let cleanup = DockerCleanup::new();
    let registry = Registry::start();
    let repo = Repo::new();
    // A production database with data: migrated (the history says so) and seeded, so the
    // read-only checks against the deployed URL see rows, as they would in production.
    let root = crate::support::repo_root();
    let migrations = xtask_data::db::push::local_migrations(&root).unwrap();
    let mut files = vec![root.join("supabase/local/supabase-compat.sql")];
    files.extend(migrations.iter().map(|m| m.path.clone()));
    files.push(root.join("supabase/seed.sql"));
    let versions: Vec<String> = migrations
        .iter()
        .map(|m| format!("('{}')", m.version))
        .collect();
    let db = openeu_testdb::Server::start(
        &files,
        &format!(
            "insert into supabase_migrations.schema_migrations (version) values {} on conflict do nothing",
            versions.join(", ")
        ),
    );
    let app_port = free_port();
    let container = format!("openeu-deploy-smoke-test-{app_port}");
    let db_port = db.port;
    let label = cleanup.label.clone();
    let name = container.clone();
    let stub = Stub::start(Scenario {
        api_key: API_KEY.to_owned(),
        image_path: Some(format!("{}/openeu-backend:latest", registry.address)),
        service_url: Some(format!("http://127.0.0.1:{app_port}")),
        on_live: Some(OnLive(Arc::new(move |deploy: &Value| {
            run_deployed(deploy, &name, &label, app_port, db_port);
        }))),
        ..Scenario::default()
    })
    .unwrap();

    // The image ids of the smoke stack's app containers, sampled while the deploy runs.
    let running = Arc::new(AtomicBool::new(true));
    let watcher = {
        let running = Arc::clone(&running);
        let label = cleanup.label.clone();
        let ours = container.clone();
        std::thread::spawn(move || {
            let mut seen = std::collections::BTreeSet::new();
            while running.load(Ordering::Relaxed) {
                let out = docker(&[
                    "ps",
                    "--filter",
                    &format!("label={label}"),
                    "--format",
                    "{{.Names}}",
                ]);
                for name in String::from_utf8_lossy(&out.stdout).lines() {
                    if name.ends_with("-api") && name != ours {
                        let image = docker(&["inspect", "--format", "{{.Image}}", name]);
                        let image = String::from_utf8_lossy(&image.stdout).trim().to_owned();
                        if image.starts_with("sha256:") {
                            seen.insert(image);
                        }
                    }
                }
                // A sampling interval, not a synchronisation: the deploy takes tens of seconds.
                std::thread::sleep(Duration::from_millis(200));
            }
            seen
        })
    };
    let out = Xtask::new(repo.path())
        .env("RENDER_API_KEY", API_KEY)
        .env("RENDER_SERVICE_ID", stub::SERVICE_ID)
        .env("RENDER_API_URL", &stub.api_url())
        .env("PRODUCTION_DATABASE_URL", &db.url())
        .env("DOCKER_REGISTRY_SERVER", &registry.address)
        .label(&cleanup.label)
        .output(&["deploy", "--json"]);
    running.store(false, Ordering::Relaxed);
    let smoke_images = watcher.join().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = json(&out);
    assert_eq!(report["smoke"]["ran"], true, "{report}");
    assert_eq!(report["smoke"]["skipped"], false, "{report}");
    assert_eq!(report["smoke"]["url_checks"], true, "{report}");
    assert!(report["phases"]["smoke"].as_f64().is_some(), "{report}");

    // What Render was given: the imageUrl of the one trigger.
    let triggers: Vec<_> = stub
        .journal()
        .into_iter()
        .filter(|r| r.method == "POST" && r.target.ends_with("/deploys"))
        .collect();
    assert_eq!(triggers.len(), 1);
    let image_url = serde_json::from_str::<Value>(&triggers[0].body).unwrap()["imageUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(report["image"], image_url.as_str());
    assert!(
        image_url.starts_with(&format!("{}/openeu-backend@sha256:", registry.address)),
        "{image_url}"
    );
    let id_of = |reference: &str| {
        let out = docker(&["image", "inspect", "--format", "{{.Id}}", reference]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let shipped = id_of(&image_url);
    assert_eq!(
        smoke_images,
        std::collections::BTreeSet::from([shipped.clone()]),
        "the smoke stack ran exactly the image whose digest Render was given"
    );
    let live = docker(&["inspect", "--format", "{{.Image}}", &container]);
    assert_eq!(String::from_utf8_lossy(&live.stdout).trim(), shipped);
    let _ = docker(&["rm", "-f", &container]);
}

fn assert_no_canary_in_tree(dir: &Path, canaries: &[&String]) {
    // Compiled artifacts are large and cannot hold runtime values.
    let compiled = |d: &Path| {
        ["debug", "release", "xtask-cli"]
            .iter()
            .any(|p| d.ends_with(p))
    };
    for entry in xtask_core::files::walk(dir, xtask_core::files::Links::Skip, compiled).flatten() {
        if !entry.file_type().is_file() {
            continue;
        }
        if let Ok(bytes) = std::fs::read(entry.path()) {
            let text = String::from_utf8_lossy(&bytes);
            for canary in canaries {
                assert!(
                    !text.contains(canary.as_str()),
                    "a canary is in {}",
                    entry.path().display()
                );
            }
        }
    }
}

/// The Supabase CLI that `cargo xtask setup` installs under the state directory, or one on PATH.
fn supabase_cli() -> Option<std::path::PathBuf> {
    xtask_setup::setup::supabase_cli().or_else(|| xtask_core::process::which("supabase"))
}

#[test]
fn ctrl_c_leaves_the_deploy_running_or_cancels_it_on_request() {
    let repo = Repo::new();
    let db = production_db();
    for cancel in [false, true] {
        let stub = Stub::start(Scenario {
            statuses: vec!["build_in_progress".to_owned()],
            ..image_scenario(&repo)
        })
        .unwrap();
        let x = xtask(&repo, &stub, &db.url());
        let mut args = vec!["deploy", "--image", PUSHED, "--skip-smoke"];
        if cancel {
            args.push("--cancel-on-interrupt");
        }
        let child = x
            .command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        crate::support::wait_until(
            "the deploy to be waited on",
            Duration::from_secs(60),
            || {
                stub.journal()
                    .iter()
                    .filter(|r| r.method == "GET" && r.target.contains("/deploys/dep-"))
                    .count()
                    >= 2
            },
        );
        let status = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let out = child.wait_with_output().unwrap();
        let text = text(&out);
        assert_eq!(out.status.code(), Some(130), "{text}");
        let ours = new_deploys(&stub);
        if cancel {
            assert!(text.contains("was canceled"), "{text}");
            assert_eq!(ours[0]["status"], "canceled");
        } else {
            assert!(
                text.contains("continues on Render") && text.contains("cargo xtask deploy status"),
                "{text}"
            );
            assert_eq!(ours[0]["status"], "build_in_progress");
        }
    }
}

#[test]
fn bench_deploy_reports_its_figures() {
    let repo = Repo::new();
    let (stdout, stderr) = Xtask::new(repo.path())
        .lab()
        .ok(&["bench", "deploy", "--runs", "3", "--json"]);
    eprintln!("{stderr}");
    let figures: Value = serde_json::from_str(&stdout).unwrap();
    eprintln!("{}", serde_json::to_string_pretty(&figures).unwrap());
    assert_eq!(figures.as_array().unwrap().len(), 4, "{figures}");
    assert!(
        figures[1]["ours"].as_str().unwrap().ends_with('s'),
        "{figures}"
    );
    // A source-only change pushed something, and less than the whole image plus its binary
    // layer again: the registry's storage gained the new layer, not the unchanged ones.
    let pushed_share = figures[3]["ratio"].as_f64().unwrap();
    assert!(pushed_share > 0.0 && pushed_share <= 1.0, "{figures}");
    assert!(
        figures[2]["ours"].as_str().unwrap().ends_with("MB"),
        "{figures}"
    );
}
