//! The app's runtime image, checked with the container ecosystem's own tools: hadolint on every
//! Dockerfile, container-structure-test with the committed config, dive in CI mode for layer
//! efficiency. And the image runs: it turns healthy through its own `healthcheck`, serves
//! /health, has no shell to exec into, and exits 0 on SIGTERM. Name resolution in the container
//! (the database by its network alias) is exercised by the stack tests, whose app reaches `db`.

use xtask_core::{docker::Docker, workspace::Workspace};
use xtask_images::image;

use crate::support::{
    DockerCleanup, Xtask, docker, docker_ok, edit, http_get, repo_copy, repo_workspace, unique,
};

/// The goal for the runtime image (it was 112 MB on debian:bookworm-slim).
const MAX_IMAGE_BYTES: u64 = 30_000_000;

#[test]
fn every_dockerfile_passes_hadolint() {
    let ws = repo_workspace();
    let files = image::checks::dockerfiles(&ws).unwrap();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.strip_prefix(&ws.root).unwrap().display().to_string())
        .collect();
    for expected in ["Dockerfile", "Dockerfile.base", "supabase/local/Dockerfile"] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} is linted: {names:?}"
        );
    }
    let failures: Vec<String> = files
        .iter()
        .filter_map(|f| image::checks::hadolint(f).err())
        .map(|e| format!("{e:#}"))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn runtime_image_holds_the_binary_and_what_it_links_and_runs() {
    let cleanup = DockerCleanup::new();
    let copy = repo_copy();
    // The configured registry, so the machine's base image is found (nothing is pushed), and
    // an app image name of this test's own, so no developer's tag is taken or removed.
    let app_image = unique("openeu-runtime-test");
    edit(&copy.path().join("Cargo.toml"), |text| {
        text.replace(
            "app-image = \"openeu-backend\"",
            &format!("app-image = \"{app_image}\""),
        )
    });
    let x = Xtask::new(copy.path()).label(&cleanup.label);
    let (stdout, _) = x.ok(&["image", "build", "--json"]);
    let built: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let image = built["image"].as_str().unwrap().to_owned();
    assert!(image.contains(&app_image), "{image}");

    let ws = Workspace::open(Some(copy.path().to_path_buf()), vec![cleanup.label.clone()]).unwrap();

    // container-structure-test with the committed config: no shell or package manager,
    // non-root, CMD, port, CA bundle, the binary runs.
    let report = image::checks::structure_test(&repo_workspace(), &image).unwrap();
    assert!(report.contains("Failures:    0"), "{report}");

    // dive --ci: one layer of files nothing overwrites.
    let efficiency = image::checks::dive(&image).unwrap();
    eprintln!(
        "dive: efficiency {:.2} %, {} bytes wasted",
        efficiency.efficiency_percent, efficiency.wasted_bytes
    );
    assert!(efficiency.passed, "{}", efficiency.report);
    assert!(
        efficiency.efficiency_percent >= 99.0,
        "{}",
        efficiency.report
    );

    let size: u64 = docker_ok(&["image", "inspect", "--format", "{{.Size}}", &image])
        .trim()
        .parse()
        .unwrap();
    assert!(
        size <= MAX_IMAGE_BYTES,
        "the runtime image is {size} bytes, over the {MAX_IMAGE_BYTES} goal"
    );

    // It runs: healthy through its own healthcheck subcommand, /health answers.
    let docker_cli = Docker::new(&ws);
    let name = unique("runtime");
    let running = image::run_healthy(
        &docker_cli,
        &image,
        Some(&name),
        None,
        vec![
            (
                "DATABASE_URL".to_owned(),
                "postgres://postgres@127.0.0.1:1/postgres".to_owned(),
            ),
            (
                "SUPABASE_JWT_SECRET".to_owned(),
                "runtime-image-test-secret".to_owned(),
            ),
        ],
        Vec::new(),
    )
    .unwrap();
    let address = running.url.trim_start_matches("http://");
    let (status, body) = http_get(address, "/health");
    assert_eq!(status, 200, "{body}");

    // There is no shell to exec into.
    let exec = docker(&["exec", &name, "sh", "-c", "true"]);
    assert!(!exec.status.success(), "a shell ran in the runtime image");
    // Docker 20.10 prints the runtime's refusal on stdout, later versions on stderr.
    let why = format!(
        "{}{}",
        String::from_utf8_lossy(&exec.stdout),
        String::from_utf8_lossy(&exec.stderr)
    );
    assert!(why.contains("executable file not found"), "{why}");

    // The binary is PID 1 and handles SIGTERM itself: a graceful stop exits 0.
    docker_ok(&["stop", "--time", "10", &name]);
    let code = docker_ok(&["inspect", "--format", "{{.State.ExitCode}}", &name]);
    assert_eq!(code.trim(), "0", "exit code after SIGTERM");
}
