//! `cargo xtask base …`: the content-addressed base image. Its tag is the hash of its inputs
//! (see hash.rs), so a tag that exists locally or in the registry is never built again.

use std::{collections::BTreeMap, path::Path};

use anyhow::{Context, Result, bail};
use serde::Serialize;

pub mod cache;
pub mod edit_table;
pub mod graph;
pub mod hash;
mod pin;

use hash::BaseInputs;

use xtask_core::{
    docker::{
        Build, Docker, ImageOwner,
        credentials::{self, PrivateConfig},
        registry::{self, Credentials, Lookup},
    },
    failpoint, progress,
    workspace::{self, Workspace},
};

use crate::flags;

/// The image label holding the full hash.
pub const HASH_LABEL: &str = "org.openeu.base.hash";
/// The image label holding each input's digest as JSON, read by `base diff`.
pub const INPUTS_LABEL: &str = "org.openeu.base.inputs";

impl flags::BaseCommand {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        match self {
            flags::BaseCommand::Hash(args) => args.run(ws),
            flags::BaseCommand::Status(args) => pin::status(ws, args.json),
            flags::BaseCommand::Build(args) => args.run(ws),
            flags::BaseCommand::Pin(args) => args.run(ws),
            flags::BaseCommand::Diff(args) => args.run(ws),
        }
    }
}

/// Hashes the workspace. The key is cached under the target directory by the raw bytes of
/// everything it reads (cache.rs), so a warm `base status` costs one `cargo metadata
/// --no-deps`; on a miss, cargo resolves the graph for the image's platform and derives the
/// pruned lockfile.
pub fn compute(ws: &Workspace) -> Result<BaseInputs> {
    let no_deps = ws.metadata_json()?;
    let key = cache::key(ws, no_deps)?;
    let dir = ws.scratch("base-key")?;
    if let Some(inputs) = cache::load(&dir, &key) {
        return Ok(inputs);
    }
    let inputs = compute_uncached(ws)?;
    cache::store(&dir, &key, &inputs);
    Ok(inputs)
}

/// The key without the cache: `cargo metadata --filter-platform` with dependencies, then the
/// pruned manifests and the lockfile cargo derives from them.
pub fn compute_uncached(ws: &Workspace) -> Result<BaseInputs> {
    let resolved = match resolved_metadata(ws) {
        Ok(resolved) => resolved,
        // A manifest that the base can never build (a path dependency outside the workspace)
        // also makes the lockfile stale: name the manifest's problem, not the lockfile's.
        Err(err) => {
            let no_deps: hash::Metadata =
                serde_json::from_slice(ws.metadata_json()?).context("parsing cargo metadata")?;
            hash::check_manifests(&ws.root, &no_deps)?;
            return Err(err);
        }
    };
    let metadata: hash::Metadata =
        serde_json::from_slice(&resolved).context("parsing cargo metadata")?;
    let triple = hash::image_triple();
    let print_cfg = ws
        .sh
        .cmd("rustc")
        .args(["--print", "cfg", "--target", triple])
        .quiet()
        .read()
        .with_context(|| format!("reading the cfg values of {triple} from rustc"))?;
    let platform = graph::Platform::new(triple, &print_cfg);
    hash::collect(&ws.root, &metadata, &ws.config, &platform, &|staging| {
        prune_lock(ws, staging)
    })
}

/// `cargo metadata` with the resolved graph, for the image's platform. `--locked`: the base
/// builds with it, and hashing must never rewrite the workspace's Cargo.lock.
fn resolved_metadata(ws: &Workspace) -> Result<Vec<u8>> {
    let lock = ws.path(workspace::LOCKFILE);
    if !lock.exists() {
        bail!(
            "{} is missing: run `cargo generate-lockfile` and commit it (the base image is built with --locked)",
            lock.display()
        );
    }
    let out = ws
        .sh
        .cmd("cargo")
        .args(["metadata", "--format-version", "1", "--locked"])
        .args(["--filter-platform", hash::image_triple()])
        .quiet()
        .ignore_status()
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let hint = if stderr.contains("--locked") {
            "\nCargo.lock does not match the manifests (the base builds with --locked); run `cargo update --workspace` and commit Cargo.lock"
        } else {
            ""
        };
        bail!("cargo metadata failed:\n{}{hint}", stderr.trim_end());
    }
    Ok(out.stdout)
}

/// Writes the staged context (pruned manifests, stubs, cargo config) beside the workspace's
/// Cargo.lock and lets cargo drop what the pruned manifests no longer reach: resolving offline
/// keeps every remaining locked version and re-resolves only the members. The result is exactly the file that `cargo build --locked` accepts in the base
/// build. Offline: the resolve above already cached every index entry it needs.
fn prune_lock(ws: &Workspace, staging: &hash::Staging<'_>) -> Result<String> {
    // One directory per call: tests and worktrees hash side by side in one target dir.
    static STAGES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let stage = STAGES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = ws
        .scratch("base-key-stage")?
        .join(format!("{}-{stage}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let result = stage_and_update(ws, staging, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn stage_and_update(ws: &Workspace, staging: &hash::Staging<'_>, dir: &Path) -> Result<String> {
    for (relative, content) in &staging.files {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, content).with_context(|| format!("writing {}", path.display()))?;
    }
    let lock = dir.join(workspace::LOCKFILE);
    std::fs::write(&lock, staging.lockfile)?;
    let mut cmd = xtask_core::process::command("cargo");
    // `cargo metadata` resolves with the previous lock, as `cargo update --workspace` would,
    // and writes the lockfile; it skips update's scan of every newer version (5x less CPU).
    cmd.args(["metadata", "--format-version", "1", "--offline", "--quiet"])
        .args(["--filter-platform", hash::image_triple()])
        .current_dir(dir)
        .stdout(std::process::Stdio::null());
    if let Some(toolchain) = ws.sh.var_os("RUSTUP_TOOLCHAIN") {
        cmd.env("RUSTUP_TOOLCHAIN", toolchain);
    }
    let out = cmd.output().context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata --offline in {} failed:\n{}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    std::fs::read_to_string(&lock).with_context(|| format!("reading {}", lock.display()))
}

/// The full reference of the current base: `<registry>/<base-image>:<tag>`.
pub fn reference(ws: &Workspace, inputs: &BaseInputs) -> String {
    format!("{}:{}", ws.config.base_repository(), inputs.tag())
}

impl flags::BaseHash {
    fn run(self, ws: &Workspace) -> Result<()> {
        let inputs = compute(ws)?;
        if self.json {
            let per_input: BTreeMap<_, _> = inputs
                .inputs
                .iter()
                .map(|i| (i.name.clone(), i.digest()))
                .collect();
            let value = HashJson {
                hash: &inputs.hash,
                inputs: per_input,
                reference: reference(ws, &inputs),
                tag: inputs.tag(),
            };
            println!("{}", serde_json::to_string_pretty(&value)?);
        } else if self.explain {
            for input in &inputs.inputs {
                println!(
                    "{}  {:>8} B  {}",
                    &input.digest()[..16],
                    input.content.len(),
                    input.name
                );
            }
            println!("{}  base hash", inputs.hash);
        } else {
            println!("{}", inputs.hash);
        }
        Ok(())
    }
}

/// Asks the engine whether the base is local and the registry whether it has it. A local
/// registry is asked over HTTP on a second thread, at the same time: this is the hot path of
/// `base status` and of every build.
fn look_up(
    ws: &Workspace,
    docker: &Docker<'_>,
    inputs: &BaseInputs,
) -> (Result<bool>, Result<Lookup>) {
    let reference = reference(ws, inputs);
    let (registry, repository, tag) = (&ws.config.registry, &ws.config.base_image, inputs.tag());
    if !ws.config.registry_is_local() {
        return (
            docker.image_exists(&reference),
            registry::lookup(docker, registry, repository, tag),
        );
    }
    std::thread::scope(|scope| {
        let remote = scope.spawn(|| registry::lookup_http(registry, repository, tag));
        let local = docker.image_exists(&reference);
        (
            local,
            remote
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("registry lookup panicked"))),
        )
    })
}

impl flags::BaseBuild {
    fn run(self, ws: &Workspace) -> Result<()> {
        let step = progress::step("hashing base inputs");
        let inputs = compute(ws)?;
        let reference = reference(ws, &inputs);
        step.done_with(&format!("tag {}", inputs.tag()));
        let docker = Docker::new(ws);
        docker.require_engine()?;
        let outcome = ensure(ws, &docker, &inputs, self.force, self.push)?;
        if self.json {
            let value = BuildJson {
                built: outcome.built,
                digest: outcome.digest.as_deref(),
                hash: &inputs.hash,
                pulled: outcome.pulled,
                pushed: outcome.pushed,
                reason: &outcome.reason,
                reference: &reference,
            };
            println!("{}", serde_json::to_string_pretty(&value)?);
        } else {
            println!("{reference}");
        }
        Ok(())
    }
}

// The `--json` documents of `base hash`, `base status` and `base build`. Their fields are in
// alphabetical order, the order their keys have always been printed in.

#[derive(Serialize)]
struct HashJson<'a> {
    hash: &'a str,
    /// Each input's digest, by name.
    inputs: BTreeMap<String, String>,
    reference: String,
    tag: &'a str,
}

#[derive(Serialize)]
struct BuildJson<'a> {
    built: bool,
    digest: Option<&'a str>,
    hash: &'a str,
    pulled: bool,
    pushed: bool,
    reason: &'a str,
    reference: &'a str,
}

/// What `ensure` did, and why.
pub struct Outcome {
    pub built: bool,
    pub pulled: bool,
    pub pushed: bool,
    pub digest: Option<String>,
    pub reason: String,
}

/// Makes the base image present locally (and in the registry with `push`), building only when
/// neither has the tag. Used by `base build` and by every task that needs the base.
pub fn ensure(
    ws: &Workspace,
    docker: &Docker<'_>,
    inputs: &BaseInputs,
    force: bool,
    push: bool,
) -> Result<Outcome> {
    let reference = reference(ws, inputs);
    let step = progress::step("looking up the base image");
    let (local, remote) = look_up(ws, docker, inputs);
    let local = local?;
    let remote = match remote {
        Ok(found) => Some(found),
        // Without --push the registry is only a cache: a dead one means "build locally".
        Err(err) if !push => {
            progress::note(format!("registry not consulted: {err:#}"));
            None
        }
        Err(err) => return Err(err),
    };
    step.done();
    let in_registry = matches!(remote, Some(Lookup::Present { .. }));
    let mut outcome = Outcome {
        built: false,
        pulled: false,
        pushed: false,
        digest: None,
        reason: String::new(),
    };
    if let Some(Lookup::Present { digest }) = &remote {
        outcome.digest = Some(digest.clone());
    }

    if !force && (local || in_registry) {
        outcome.reason = match (local, in_registry) {
            (true, true) => {
                "present locally and in the registry: its inputs are unchanged, nothing to build"
                    .to_owned()
            }
            (true, false) => {
                "present locally: its inputs are unchanged, nothing to build".to_owned()
            }
            _ => "present in the registry: pulled instead of built".to_owned(),
        };
        if !local {
            let step = progress::step(format!("pulling {reference}"));
            docker.pull(&reference)?;
            outcome.pulled = true;
            step.done();
        }
        progress::note(format!("base {}: {}", inputs.tag(), outcome.reason));
    } else {
        outcome.reason = if force {
            "--force".to_owned()
        } else {
            "no image has these inputs yet".to_owned()
        };
        build(ws, docker, inputs, force)?;
        outcome.built = true;
    }

    if push && (!in_registry || outcome.built) {
        outcome.digest = Some(push_image(ws, docker, &reference)?);
        outcome.pushed = true;
    }
    Ok(outcome)
}

pub fn build(ws: &Workspace, docker: &Docker<'_>, inputs: &BaseInputs, force: bool) -> Result<()> {
    let step = progress::step("checking that Cargo.lock is up to date");
    let out = ws
        .sh
        .cmd("cargo")
        .args(["metadata", "--format-version", "1", "--locked"])
        .quiet()
        .ignore_stdout()
        .ignore_status()
        .output()?;
    if !out.status.success() {
        bail!(
            "Cargo.lock does not match the manifests (the base builds with --locked); run `cargo update --workspace` and commit Cargo.lock:\n{}",
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    step.done();

    let step = progress::step("writing the base build context");
    let context = write_context(ws, inputs)?;
    step.done_with(&context.display().to_string());

    let reference = reference(ws, inputs);
    let step = progress::step(format!("building {reference}"));
    let digests = serde_json::to_string(&inputs.digests())?;
    docker
        .build(&Build {
            dockerfile: &context.join(workspace::BASE_DOCKERFILE),
            context: &context,
            tags: vec![reference.clone()],
            build_args: inputs.build_args.clone(),
            labels: vec![
                (HASH_LABEL.to_owned(), inputs.hash.clone()),
                (INPUTS_LABEL.to_owned(), digests),
                (
                    "org.opencontainers.image.title".to_owned(),
                    ws.config.base_image.clone(),
                ),
            ],
            no_cache: force,
            owner: ImageOwner::Run,
            log: ws.scratch("logs")?.join("base-build.log"),
        })
        .context("building the base image")?;
    step.done();
    Ok(())
}

/// Writes exactly the hashed inputs, plus stub sources, into a fresh directory under target/.
pub fn write_context(ws: &Workspace, inputs: &BaseInputs) -> Result<std::path::PathBuf> {
    let context = ws.scratch("base-context")?;
    std::fs::remove_dir_all(&context)?;
    std::fs::create_dir_all(&context)?;
    let files = inputs
        .inputs
        .iter()
        .filter_map(|i| Some((i.context_path.as_deref()?, i.content.as_slice())))
        .chain(
            inputs
                .stubs
                .iter()
                .map(|(path, content)| (path.as_str(), content.as_bytes())),
        );
    for (relative, content) in files {
        let path = context.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, content).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(context)
}

/// Pushes `reference`, logging in first when credentials are set. The login lives in a private
/// client config on a RAM filesystem (docker/credentials.rs), deleted afterwards, and swept by
/// the next command if this one is killed.
pub fn push_image(ws: &Workspace, docker: &Docker<'_>, reference: &str) -> Result<String> {
    let step = progress::step(format!("pushing {reference}"));
    // Configs of killed pushes from before they moved off target/.
    if let Ok(old) = ws.target_dir().map(|t| t.join("xtask/docker-config")) {
        credentials::sweep_dir(&old);
    }
    let config = match Credentials::from_env() {
        Some(creds) => {
            let config = PrivateConfig::create()?;
            docker.login(
                &ws.config.registry,
                &creds.username,
                &creds.password,
                config.path(),
            )?;
            failpoint::hit("base-push:after-login");
            Some(config)
        }
        None => None,
    };
    let digest = docker.push(reference, config.as_ref().map(PrivateConfig::path))?;
    drop(config);
    step.done_with(&digest);
    Ok(digest)
}

impl flags::BaseDiff {
    fn run(self, ws: &Workspace) -> Result<()> {
        let image = match self.image {
            flags::BaseImage::Reference(reference) => reference,
            flags::BaseImage::Tag(tag) => format!("{}:{tag}", ws.config.base_repository()),
        };
        let inputs = compute(ws)?;
        let docker = Docker::new(ws);
        docker.require_engine()?;
        if !docker.image_exists(&image)? {
            docker
                .pull(&image)
                .with_context(|| format!("{image} is neither local nor pullable"))?;
        }
        let labels = docker.image_labels(&image)?;
        let recorded: BTreeMap<String, String> =
            serde_json::from_str(labels.get(INPUTS_LABEL).with_context(|| {
                format!("{image} has no {INPUTS_LABEL} label: not built by xtask")
            })?)?;
        let current = inputs.digests();
        let mut differences = 0;
        for name in recorded
            .keys()
            .chain(current.keys())
            .collect::<std::collections::BTreeSet<_>>()
        {
            let line = match (recorded.get(name), current.get(name)) {
                (Some(a), Some(b)) if a == b => continue,
                (Some(_), Some(_)) => format!("changed  {name}"),
                (Some(_), None) => format!("removed  {name}"),
                _ => format!("added    {name}"),
            };
            differences += 1;
            println!("{line}");
        }
        if differences == 0 {
            println!("no differences: {image} was built from the current inputs");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
