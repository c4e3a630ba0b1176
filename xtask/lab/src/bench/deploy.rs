//! `cargo lab bench deploy`: the deploy command against the Render stub with instant status
//! changes, on this workspace (which must pass the deploy's preflight: clean and pinned). An
//! already pushed image is deployed (`--image`), so the figures are xtask's own: preflight,
//! trigger, noticing `live`, verification.
//!
//! Then what a source-only change pushes: the app image of a copy of the workspace is built and
//! pushed to a private registry, a string of the service's source is changed, and the image is
//! built and pushed again; the bytes sent are the blobs the registry's storage gained (docker
//! sends only blobs the registry lacks), against the image's size and its binary's layer.
//!
//! `--cold-build` adds the Git-backed case (Render builds `Dockerfile` itself): a source-only
//! `docker build` of `Dockerfile` with the pinned base present, against a cold build of the same
//! Dockerfile (`Dockerfile.base` with `--no-cache`, then `Dockerfile`). Several minutes.

use std::{
    collections::BTreeMap,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use xtask_core::{
    docker::{Build, Docker, ImageOwner},
    http, process, progress,
    workspace::{self, Workspace},
};
use xtask_images::{base, image};
use xtask_setup::setup;
use xtask_stubs::render::{self as stub, Scenario, Stub};

use crate::{
    bench::{Cleanup, Figure, copy_repo, fmt_secs, median, report, secs},
    flags,
};

impl flags::BenchDeploy {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        let mut figures = self.deploy_figures(ws)?;
        let step = progress::step("setup");
        setup::ensure(ws)?;
        step.done();
        let docker = Docker::new(ws);
        let label = format!("org.openeu.bench-run={}", std::process::id());
        let scratch = ws
            .scratch("bench")?
            .join(format!("deploy-{}", std::process::id()));
        std::fs::create_dir_all(&scratch)?;
        let mut cleanup = Cleanup::new(&docker, label.clone(), scratch.clone());
        let registry = cleanup.start_registry()?;
        let repo = copy_repo(ws, &scratch.join("repo"))?;
        let mut copy = Workspace::open(Some(repo.clone()), vec![label])?;
        copy.config.registry = registry.clone();
        // The copy may sit outside any rustup override; cargo metadata runs on our toolchain.
        let toolchain = workspace::toolchain_version(&ws.path(workspace::TOOLCHAIN_FILE))?;
        copy.sh.set_var("RUSTUP_TOOLCHAIN", toolchain);
        figures.extend(pushed_after_source_change(
            &copy,
            &registry,
            &scratch.join("registry"),
        )?);
        if self.cold_build {
            figures.push(git_backed_build(&copy, &scratch)?);
        }
        drop(cleanup);
        report(&figures, self.json)
    }

    /// xtask's own time for a deploy of a pushed image, and how soon it notices `live`.
    fn deploy_figures(&self, ws: &Workspace) -> Result<Vec<Figure>> {
        let head = ws
            .sh
            .cmd("git")
            .args(["rev-parse", "HEAD"])
            .quiet()
            .read()
            .context("the workspace must be a git checkout")?;
        let mut schema = vec![ws.path(xtask_core::workspace::SUPABASE_COMPAT_SQL)];
        schema.extend(
            xtask_data::db::push::local_migrations(&ws.root)?
                .into_iter()
                .map(|m| m.path),
        );
        // Every migration applied already: the deploy has none pending, as usual.
        let versions: Vec<String> = xtask_data::db::push::local_migrations(&ws.root)?
            .into_iter()
            .map(|m| format!("('{}')", m.version))
            .collect();
        let db = openeu_testdb::Server::start(
            &schema,
            &format!(
                "insert into supabase_migrations.schema_migrations (version) values {} on conflict do nothing",
                versions.join(", ")
            ),
        );
        let image = format!("{}@sha256:{}", ws.config.app_repository(), "ab".repeat(32));
        let exe = super::xtask_binary()?;
        let mut wall = Vec::new();
        let mut notice = Vec::new();
        let mut most_requests = 0;
        for _ in 0..self.runs.max(1) {
            let stub = Stub::start(Scenario {
                api_key: "rnd_bench".to_owned(),
                image_path: Some(format!("{}:latest", ws.config.app_repository())),
                image_version: head[..12].to_owned(),
                statuses: vec!["build_in_progress".to_owned(), "live".to_owned()],
                ..Scenario::default()
            })?;
            let mut cmd = process::command(&exe);
            cmd.arg("--workspace")
                .arg(&ws.root)
                .args(["deploy", "--skip-smoke", "--json", "--image", &image])
                .env("RENDER_API_KEY", "rnd_bench")
                .env("RENDER_SERVICE_ID", stub::SERVICE_ID)
                .env("RENDER_API_URL", stub.api_url())
                .env("PRODUCTION_DATABASE_URL", db.url());
            let started = std::time::Instant::now();
            let out = process::output_with_timeout(cmd, None, Duration::from_mins(2))?;
            let took = started.elapsed();
            if !out.status.success() {
                bail!(
                    "the deploy against the stub failed (the workspace must pass the deploy's preflight):\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            wall.push(took);
            if let Ok(result) = serde_json::from_slice::<serde_json::Value>(&out.stdout) {
                xtask_core::progress::note(format!(
                    "deploy took {:.2}s; its phases: {}",
                    took.as_secs_f64(),
                    result["phases"]
                ));
            }
            let journal = stub.journal();
            let (id, live_at) = stub
                .live_at()
                .into_iter()
                .next_back()
                .context("the stub saw no deploy go live")?;
            let seen = journal
                .iter()
                .find(|r| r.method == "GET" && r.target.ends_with(&id) && r.at > live_at)
                .map(|r| r.at)
                .context("xtask never asked again after live")?;
            notice.push(seen - live_at);
            let api_requests = journal
                .iter()
                .filter(|r| r.target.starts_with("/v1/"))
                .count();
            most_requests = most_requests.max(api_requests);
        }
        let wall = median(&mut wall);
        let notice = median(&mut notice);
        // Render's limit for GETs is 400 per minute; a whole deploy takes less than a minute.
        let limit: u32 = 400;
        let figures = [
            Figure {
                name: "deploy of a pushed image (xtask's own time)".to_owned(),
                ours: fmt_secs(wall),
                reference: "-".to_owned(),
                ratio: None,
                ratio_is: "",
                goal: "<= 1.5 s",
                met: wall <= Duration::from_millis(1500),
            },
            Figure {
                name: "stub turns live -> xtask notices".to_owned(),
                ours: fmt_secs(notice),
                reference: format!("{most_requests} API requests per deploy"),
                ratio: Some(
                    f64::from(u32::try_from(most_requests).unwrap_or(u32::MAX)) / f64::from(limit),
                ),
                ratio_is: "requests / 400 per minute",
                goal: "<= 1 s, under the limit",
                met: notice <= Duration::from_secs(1) && most_requests <= limit as usize,
            },
        ];
        Ok(figures.into())
    }
}

/// A source-only change: a string the service prints (its usage text) changes, so the binary
/// changes and nothing else does.
fn change_the_source(repo: &Path) -> Result<()> {
    let main_rs = repo.join("crates/openeu-api/src/main.rs");
    let text = std::fs::read_to_string(&main_rs)
        .with_context(|| format!("reading {}", main_rs.display()))?;
    let marker = "The OpenEU public API.";
    if !text.contains(marker) {
        bail!(
            "{}: the usage text no longer starts with {marker:?}; update bench/deploy.rs's source-only change",
            main_rs.display()
        );
    }
    let stamp = format!(
        "The OpenEU public API (bench edit {}).",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    );
    std::fs::write(&main_rs, text.replacen(marker, &stamp, 1))
        .with_context(|| format!("writing {}", main_rs.display()))
}

/// The blobs in a registry's filesystem storage: digest → size.
fn stored_blobs(storage: &Path) -> Result<BTreeMap<String, u64>> {
    let root = storage.join("data/docker/registry/v2/blobs/sha256");
    let mut blobs = BTreeMap::new();
    let Ok(prefixes) = std::fs::read_dir(&root) else {
        return Ok(blobs);
    };
    for prefix in prefixes {
        for blob in std::fs::read_dir(prefix?.path())? {
            let blob = blob?;
            if let Ok(meta) = std::fs::metadata(blob.path().join("data")) {
                blobs.insert(
                    format!("sha256:{}", blob.file_name().to_string_lossy()),
                    meta.len(),
                );
            }
        }
    }
    Ok(blobs)
}

/// The layers (digest, compressed size) of `repository@digest` and the size of the rest (the
/// config and the manifest itself), from the registry's API.
fn manifest(registry: &str, repository: &str, digest: &str) -> Result<(Vec<(String, u64)>, u64)> {
    let path = format!("/v2/{repository}/manifests/{digest}");
    let response = http::Request::new("GET", registry, &path)
        .header(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json",
        )
        .send()?;
    if response.status != 200 {
        bail!("GET {registry}{path}: HTTP {}", response.status);
    }
    let json = response.json()?;
    let size = |v: &serde_json::Value| v["size"].as_u64().unwrap_or_default();
    let layers = json["layers"]
        .as_array()
        .context("the manifest lists no layers")?
        .iter()
        .map(|l| (l["digest"].as_str().unwrap_or_default().to_owned(), size(l)))
        .collect();
    Ok((layers, size(&json["config"]) + response.body.len() as u64))
}

fn fmt_bytes(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

/// Builds and pushes the copy's app image, changes a source string, builds and pushes again,
/// and counts what the second push stored.
fn pushed_after_source_change(
    copy: &Workspace,
    registry: &str,
    storage: &Path,
) -> Result<Vec<Figure>> {
    let docker = Docker::new(copy);
    let step = progress::step("push after a source-only change: the first image");
    let first = image::build(copy, &docker)?;
    let first_digest = base::push_image(copy, &docker, &first.image)?;
    step.done();
    let before = stored_blobs(storage)?;
    let step = progress::step("push after a source-only change: the changed image");
    change_the_source(&copy.root)?;
    let second = image::build(copy, &docker)?;
    let digest = base::push_image(copy, &docker, &second.image)?;
    step.done();
    if digest == first_digest {
        bail!("the source change left the image unchanged ({digest}): nothing to measure");
    }
    let after = stored_blobs(storage)?;
    let sent: BTreeMap<&String, &u64> = after
        .iter()
        .filter(|(digest, _)| !before.contains_key(*digest))
        .collect();
    let pushed: u64 = sent.values().copied().sum();
    let (first_layers, _) = manifest(registry, &copy.config.app_image, &first_digest)?;
    let (layers, rest) = manifest(registry, &copy.config.app_image, &digest)?;
    let total: u64 = layers.iter().map(|(_, size)| size).sum::<u64>() + rest;
    // The binary's layer: the largest layer the change made new.
    let binary_layer = layers
        .iter()
        .filter(|(d, _)| !first_layers.iter().any(|(f, _)| f == d))
        .map(|(_, size)| *size)
        .max()
        .context("the changed image has no new layer")?;
    let resent = layers
        .iter()
        .filter(|(d, _)| first_layers.iter().any(|(f, _)| f == d) && sent.contains_key(d))
        .count();
    let new_layers = layers.iter().filter(|(d, _)| sent.contains_key(d)).count();
    progress::note(format!(
        "the image has {} layer(s); the second push stored {} blob(s): {new_layers} layer(s), the config and the manifest",
        layers.len(),
        sent.len()
    ));
    let ratio = pushed as f64 / binary_layer.max(1) as f64;
    Ok(vec![
        Figure {
            name: "bytes pushed after a source-only change".to_owned(),
            ours: fmt_bytes(pushed),
            reference: format!("binary layer {}", fmt_bytes(binary_layer)),
            ratio: Some(ratio),
            ratio_is: "pushed / binary layer",
            goal: "<= 1.2, unchanged layers never re-sent",
            met: ratio <= 1.2 && resent == 0,
        },
        Figure {
            name: "the same bytes against the whole image".to_owned(),
            ours: fmt_bytes(pushed),
            reference: format!("image {}", fmt_bytes(total)),
            ratio: Some(pushed as f64 / total.max(1) as f64),
            ratio_is: "pushed / image",
            goal: "only the app layer",
            met: new_layers == 1 && resent == 0,
        },
    ])
}

/// Render's Git-backed build with the pinned base present (a source-only `docker build` of
/// `Dockerfile`) against a cold build of the same Dockerfile (the base with `--no-cache`,
/// then `Dockerfile`). Both with the classic builder, as every xtask build.
fn git_backed_build(copy: &Workspace, scratch: &Path) -> Result<Figure> {
    let docker = Docker::new(copy);
    let inputs = base::compute(copy)?;
    base::ensure(copy, &docker, &inputs, false, false)?;
    let base_ref = base::reference(copy, &inputs);
    let app_build = |log: &str| -> Result<Duration> {
        let started = Instant::now();
        docker.build(&Build {
            dockerfile: &copy.path(workspace::APP_DOCKERFILE),
            context: &copy.root,
            tags: Vec::new(),
            build_args: vec![("BASE_IMAGE".to_owned(), base_ref.clone())],
            labels: Vec::new(),
            // The app's own steps always run, as on Render after a source change.
            no_cache: true,
            owner: ImageOwner::Run,
            log: scratch.join(log),
        })?;
        Ok(started.elapsed())
    };
    let step = progress::step("Git-backed build: Dockerfile with the pinned base present");
    let warm = app_build("git-backed-warm.log")?;
    step.done_with(&fmt_secs(warm));
    let step = progress::step("Git-backed build: Dockerfile.base with --no-cache, then Dockerfile");
    let started = Instant::now();
    base::build(copy, &docker, &inputs, true)?;
    let base_time = started.elapsed();
    let app_time = app_build("git-backed-cold.log")?;
    let cold = base_time + app_time;
    step.done_with(&format!(
        "{} (base {}, app {})",
        fmt_secs(cold),
        fmt_secs(base_time),
        fmt_secs(app_time)
    ));
    let ratio = secs(warm) / secs(cold);
    Ok(Figure {
        name: "Git-backed build: pinned base vs cold".to_owned(),
        ours: fmt_secs(warm),
        reference: fmt_secs(cold),
        ratio: Some(ratio),
        ratio_is: "pinned / cold",
        goal: "<= 0.25",
        met: ratio <= 0.25,
    })
}
