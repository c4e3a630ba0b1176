//! Failure cases of the Docker-facing tasks, each with a clear message and a non-zero exit, and
//! the secret canary: a registry password that must appear in no output, no image and no argv.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use crate::support::{DockerCleanup, Registry, Xtask, docker_ok, fixture_workspace, free_port};

#[test]
fn docker_missing_or_daemon_down_fails_fast_with_the_fix() {
    let ws = fixture_workspace();
    // No docker on PATH at all (cargo is still needed for metadata).
    let cargo_dir = std::path::Path::new(&std::env::var("CARGO").unwrap())
        .parent()
        .unwrap()
        .to_path_buf();
    let text = Xtask::new(ws.path())
        .env("PATH", cargo_dir.to_str().unwrap())
        .fails(&["base", "build"]);
    assert!(
        text.contains("docker CLI is not installed") && text.contains("cargo xtask setup"),
        "{text}"
    );

    // A daemon that does not answer: the engine check gives up after its short deadline.
    let text = Xtask::new(ws.path())
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .fails(&["base", "build"]);
    assert!(
        text.contains("Docker engine is not running") && text.contains("cargo xtask setup"),
        "{text}"
    );
}

#[test]
fn unreachable_registry_is_named() {
    let ws = fixture_workspace();
    let dead = format!("127.0.0.1:{}", free_port());
    let text = Xtask::new(ws.path())
        .env("DOCKER_REGISTRY_SERVER", &dead)
        .fails(&["base", "build", "--push"]);
    assert!(
        text.contains(&format!("registry {dead} is unreachable")),
        "{text}"
    );
    let text = Xtask::new(ws.path())
        .env("DOCKER_REGISTRY_SERVER", &dead)
        .fails(&["base", "pin"]);
    assert!(
        text.contains(&format!("registry {dead} is unreachable")),
        "{text}"
    );
}

/// Every process's argv that contains `needle`, while `running` holds.
pub(crate) fn watch_argv(
    needle: String,
    running: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        while running.load(Ordering::Relaxed) {
            for entry in std::fs::read_dir("/proc").unwrap().flatten() {
                if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
                    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
                    if cmdline.contains(&needle) {
                        seen.push(cmdline);
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        seen
    })
}

#[test]
fn registry_password_canary_never_leaks_and_a_refused_login_is_clear() {
    let canary = format!("canary-{}-s3cr3t", std::process::id());
    let cleanup = DockerCleanup::new();
    let registry = Registry::with_password("ci", &canary);
    let ws = fixture_workspace();

    let running = Arc::new(AtomicBool::new(true));
    let watcher = watch_argv(canary.clone(), Arc::clone(&running));
    let x = Xtask::new(ws.path())
        .env("DOCKER_REGISTRY_SERVER", &registry.address)
        .env("DOCKER_REGISTRY_USERNAME", "ci")
        .env("DOCKER_REGISTRY_PASSWORD", &canary)
        .label(&cleanup.label);
    let mut outputs = Vec::new();
    let build = x.output(&["base", "build", "--push", "--json"]);
    outputs.push(build.clone());
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let status = x.output(&["base", "status", "--json"]);
    outputs.push(status.clone());
    let status_json: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(
        status_json["registry"]["state"], "present",
        "authenticated lookup works: {status_json}"
    );

    // A refused login: the wrong password for the same user.
    let wrong = format!("{canary}-wrong");
    let refused = Xtask::new(ws.path())
        .env("DOCKER_REGISTRY_SERVER", &registry.address)
        .env("DOCKER_REGISTRY_USERNAME", "ci")
        .env("DOCKER_REGISTRY_PASSWORD", &wrong)
        .label(&cleanup.label)
        .output(&["base", "build", "--push", "--force"]);
    assert!(!refused.status.success());
    let refused_text = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(
        refused_text.contains(&format!(
            "registry {} refused the login of user ci",
            registry.address
        )) && refused_text.contains("DOCKER_REGISTRY_PASSWORD"),
        "{refused_text}"
    );
    outputs.push(refused);
    running.store(false, Ordering::Relaxed);
    let argv_hits = watcher.join().unwrap();

    for out in &outputs {
        for stream in [&out.stdout, &out.stderr] {
            assert!(
                !String::from_utf8_lossy(stream).contains(&canary),
                "the canary leaked into output"
            );
        }
    }
    assert!(
        argv_hits.is_empty(),
        "the canary appeared in a process's argv: {argv_hits:?}"
    );
    let images = docker_ok(&[
        "image",
        "ls",
        "--quiet",
        "--filter",
        &format!("label={}", cleanup.label),
    ]);
    assert!(
        !images.trim().is_empty(),
        "the test built images to inspect"
    );
    for id in images.split_whitespace() {
        let inspect = docker_ok(&["image", "inspect", id]);
        let history = docker_ok(&["history", "--no-trunc", id]);
        assert!(
            !inspect.contains(&canary) && !history.contains(&canary),
            "the canary is in image {id}"
        );
    }
    let docker_config =
        std::path::Path::new(&std::env::var("HOME").unwrap()).join(".docker/config.json");
    let stored = std::fs::read_to_string(docker_config).unwrap_or_default();
    assert!(
        !stored.contains(&registry.address),
        "the login was left in ~/.docker/config.json"
    );
    let leftovers: Vec<_> = std::fs::read_dir(ws.path().join("target/xtask/docker-config"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .collect();
    assert!(
        leftovers.is_empty(),
        "private docker configs were left behind: {leftovers:?}"
    );
}

#[test]
fn setup_is_idempotent_and_doctor_reports_every_part() {
    let root = crate::support::repo_root();
    let x = Xtask::new(&root);
    let (_, stderr) = x.ok(&["setup"]);
    assert!(
        stderr.contains("is running"),
        "the engine was found running:\n{stderr}"
    );
    assert!(
        !stderr.contains("building a local stand-in") && !stderr.contains("installing"),
        "a second setup changed nothing:\n{stderr}"
    );
    let (stdout, _) = x.ok(&["doctor", "--json"]);
    let checks: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let names: Vec<&str> = checks
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for expected in [
        "docker client",
        "docker engine",
        "image debian:bookworm-slim",
        "psql",
        "debootstrap",
        "container-structure-test",
        "hadolint",
        "dive",
    ] {
        assert!(
            names.iter().any(|n| n.starts_with(expected)),
            "doctor lacks {expected}: {names:?}"
        );
    }
    assert!(
        checks.as_array().unwrap().iter().all(|c| c["ok"] == true),
        "after setup all is ok: {stdout}"
    );

    // With the engine unreachable doctor says so, names the fix and exits non-zero.
    let out = Xtask::new(&root)
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output(&["doctor"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("MISSING docker engine") && text.contains("cargo xtask setup"),
        "{text}"
    );
}
