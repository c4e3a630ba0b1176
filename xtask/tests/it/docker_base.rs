//! The base image lifecycle against a real Docker engine and a real registry (Debian's
//! docker-registry on a random loopback port). Everything created carries a per-run label and
//! is removed on drop, even when an assertion fails.

use std::time::Duration;

use crate::support::{
    DockerCleanup, Registry, Xtask, docker, docker_ok, edit, fixture_workspace, repo_copy,
    wait_until,
};
use serde_json::Value;
use xtask_core::docker::registry::Lookup;

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// The manifest digest the registry holds for repo:tag (xtask's own registry lookup).
fn registry_digest(registry: &str, repo: &str, tag: &str) -> Option<String> {
    match xtask_core::docker::registry::lookup_http(registry, repo, tag).unwrap() {
        Lookup::Present { digest } => Some(digest),
        Lookup::Absent => None,
    }
}

fn cargo_lock_update(ws: &std::path::Path) {
    let out = std::process::Command::new("cargo")
        .args(["generate-lockfile", "--offline"])
        .current_dir(ws)
        .env("RUSTUP_TOOLCHAIN", "1.95.0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn base_is_built_once_pushed_pulled_and_rebuilt_only_when_a_dependency_changes() {
    let cleanup = DockerCleanup::new();
    let registry = Registry::start();
    let ws = fixture_workspace();
    let x = Xtask::new(ws.path())
        .env("DOCKER_REGISTRY_SERVER", &registry.address)
        .label(&cleanup.label);

    // 1. The first build builds and pushes.
    let (stdout, _) = x.ok(&["base", "build", "--push", "--json"]);
    let first = json(&stdout);
    assert_eq!(first["built"], true, "{first}");
    assert_eq!(first["pushed"], true, "{first}");
    let reference = first["reference"].as_str().unwrap().to_owned();
    let tag = reference.rsplit(':').next().unwrap().to_owned();
    let pushed_digest =
        registry_digest(&registry.address, "fixture-base", &tag).expect("the registry has the tag");
    assert_eq!(first["digest"], pushed_digest.as_str());
    let labels = docker_ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Labels}}",
        &reference,
    ]);
    assert!(
        labels.contains("org.openeu.base.inputs")
            && labels.contains(&first["hash"].as_str().unwrap()[..32]),
        "{labels}"
    );

    // 2. A second build --push builds nothing, and says why.
    let (stdout, stderr) = x.ok(&["base", "build", "--push", "--json"]);
    let second = json(&stdout);
    assert_eq!(second["built"], false, "{second}");
    assert_eq!(second["pushed"], false, "{second}");
    assert!(
        second["reason"]
            .as_str()
            .unwrap()
            .contains("nothing to build"),
        "{second}"
    );
    assert!(
        !stderr.contains("Step 1/"),
        "no docker build ran:\n{stderr}"
    );

    // The fresh-machine case: the image is only in the registry, so it is pulled, not built.
    docker_ok(&["image", "rm", "--force", &reference]);
    let (stdout, stderr) = x.ok(&["base", "build", "--push", "--json"]);
    let pulled = json(&stdout);
    assert_eq!(
        (pulled["built"].as_bool(), pulled["pulled"].as_bool()),
        (Some(false), Some(true)),
        "{pulled}"
    );
    assert!(
        !stderr.contains("Step 1/"),
        "no docker build ran:\n{stderr}"
    );

    // status agrees: present locally and in the registry.
    let (stdout, _) = x.ok(&["base", "status", "--json"]);
    let status = json(&stdout);
    assert_eq!(status["local"], true, "{status}");
    assert_eq!(status["registry"]["state"], "present", "{status}");
    assert_eq!(
        status["registry"]["digest"],
        pushed_digest.as_str(),
        "{status}"
    );

    // 4a. pin writes reference@digest into the Dockerfile, and --check accepts it.
    let (stdout, _) = x.ok(&["base", "pin"]);
    assert_eq!(stdout.trim(), format!("{reference}@{pushed_digest}"));
    let dockerfile = std::fs::read_to_string(ws.path().join("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains(&format!("ARG BASE_IMAGE={reference}@{pushed_digest}\n")),
        "{dockerfile}"
    );
    x.ok(&["base", "pin", "--check"]);

    // 3. A dependency change gives a new tag, which is built.
    edit(&ws.path().join("app/Cargo.toml"), |s| {
        s.replace("itoa = \"1\"", "itoa = \"1\"\nmemchr = \"2\"")
    });
    cargo_lock_update(ws.path());
    let (stdout, _) = x.ok(&["base", "build", "--push", "--json"]);
    let third = json(&stdout);
    assert_eq!(third["built"], true, "{third}");
    assert_ne!(third["reference"], first["reference"]);

    // 4b. The pin is now stale: --check fails with the command to run.
    let text = x.fails(&["base", "pin", "--check"]);
    assert!(text.contains("cargo xtask base pin"), "{text}");
    assert!(text.contains(&tag), "names the stale pin: {text}");

    // diff names exactly the inputs the edit touched.
    let (stdout, _) = x.ok(&["base", "diff", &tag]);
    let changed: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        changed,
        ["changed  Cargo.lock", "changed  manifest:app/Cargo.toml"],
        "{stdout}"
    );
}

#[test]
fn app_image_on_the_base_compiles_only_workspace_crates_and_serves_health() {
    let cleanup = DockerCleanup::new();
    let registry = Registry::start();
    let ws = repo_copy();
    let x = Xtask::new(ws.path())
        .env("DOCKER_REGISTRY_SERVER", &registry.address)
        .label(&cleanup.label);

    let (stdout, _) = x.ok(&["image", "build", "--json"]);
    let built = json(&stdout);
    let image = built["image"].as_str().unwrap().to_owned();

    // 6. The app build compiled workspace crates only: every external crate came from the base.
    let log = std::fs::read_to_string(ws.path().join("target/xtask/logs/image-build.log")).unwrap();
    let compiled: Vec<&str> = log
        .lines()
        .filter_map(|l| l.split("Compiling").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    let mut compiled = compiled;
    compiled.sort_unstable();
    assert_eq!(
        compiled,
        ["openeu-api", "openeu-env"],
        "the app build compiled workspace crates only:\n{log}"
    );

    // The runtime image: non-root, a HEALTHCHECK, a JSON-form CMD.
    let config = docker_ok(&["image", "inspect", "--format", "{{json .Config}}", &image]);
    let config = json(&config);
    assert_eq!(config["User"], "10001:10001", "{config}");
    assert_eq!(config["Healthcheck"]["Test"][0], "CMD", "{config}");
    assert_eq!(config["Cmd"], serde_json::json!(["openeu-api"]), "{config}");

    // 5. It runs the real service (not a stub from the base) and serves /health.
    // Liveness needs no database: the pool connects on demand. Values go through the docker
    // CLI's environment, not its arguments.
    let id = std::process::Command::new("docker")
        .args([
            "run",
            "--detach",
            "--label",
            &cleanup.label,
            "--publish",
            "127.0.0.1::8080",
        ])
        .args([
            "--env",
            "DATABASE_URL",
            "--env",
            "SUPABASE_JWT_SECRET",
            &image,
        ])
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/postgres")
        .env("SUPABASE_JWT_SECRET", "container-test-secret")
        .output()
        .unwrap();
    assert!(
        id.status.success(),
        "{}",
        String::from_utf8_lossy(&id.stderr)
    );
    let id = String::from_utf8_lossy(&id.stdout).into_owned();
    let id = id.trim();
    wait_until(
        "the container to become healthy",
        Duration::from_mins(1),
        || {
            let state = docker_ok(&[
                "inspect",
                "--format",
                "{{.State.Health.Status}} {{.State.Running}}",
                id,
            ]);
            assert!(
                state.contains("true"),
                "the container exited: {}",
                String::from_utf8_lossy(&docker(&["logs", id]).stderr)
            );
            state.starts_with("healthy")
        },
    );
    let address = docker_ok(&["port", id, "8080"]);
    let address = address.lines().next().unwrap().trim();
    let (status, body) = crate::support::http_get(address, "/health");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"status\":\"ok\""), "{body}");

    // SIGTERM (docker stop) is a graceful shutdown: exit code 0.
    docker_ok(&["stop", "--time", "10", id]);
    let code = docker_ok(&["inspect", "--format", "{{.State.ExitCode}}", id]);
    assert_eq!(code.trim(), "0", "exit code after SIGTERM");
}
