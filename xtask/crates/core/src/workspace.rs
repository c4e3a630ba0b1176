//! The workspace a task operates on, found at run time: its root, its configuration
//! (`[workspace.metadata.xtask]`), its target directory, and every repository path that more
//! than one task names. Nobody else spells these file names.

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
};

use anyhow::{Context, Result, bail};
use xshell::Shell;

pub const ROOT_MANIFEST: &str = "Cargo.toml";
pub const LOCKFILE: &str = "Cargo.lock";
pub const TOOLCHAIN_FILE: &str = "rust-toolchain.toml";
/// rustup's older name for the toolchain file: TOML, or just the channel on one line.
pub const LEGACY_TOOLCHAIN_FILE: &str = "rust-toolchain";
pub const CARGO_CONFIG_FILES: [&str; 2] = [".cargo/config", ".cargo/config.toml"];
pub const BASE_DOCKERFILE: &str = "Dockerfile.base";
pub const APP_DOCKERFILE: &str = "Dockerfile";
pub const ENV_EXAMPLE: &str = ".env.example";
pub const SEED_DIR: &str = "supabase/seed";
pub const SEED_SQL: &str = "supabase/seed.sql";
pub const MIGRATIONS_DIR: &str = "supabase/migrations";
pub const SUPABASE_COMPAT_SQL: &str = "supabase/local/supabase-compat.sql";
pub const SUPABASE_CONFIG: &str = "supabase/config.toml";
pub const LOCAL_DB_DIR: &str = "supabase/local";
pub const OPENAPI: &str = "openapi.json";
pub const SMOKE_CHECKS: &str = "smoke.toml";
/// What container-structure-test asserts about the app image.
pub const STRUCTURE_TEST_CONFIG: &str = "xtask/test_data/container-structure-test.yaml";

/// The label every image and container made by xtask carries, so cleanup can find them.
pub const MANAGED_LABEL: &str = "org.openeu.managed";

/// The workspace root, found at run time, never compiled in: with a shared target directory
/// one binary serves several checkouts, and each must act on its own.
///
/// `cargo run` (and so `cargo xtask` and `cargo lab`) sets `CARGO_MANIFEST_DIR` to the package's
/// own directory in the environment of the process it starts; the root is its nearest ancestor
/// whose `Cargo.toml` has a `[workspace]` table. Run directly, the binary walks up from the
/// current directory the same way.
pub fn find_root() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR") {
        let dir = PathBuf::from(dir);
        if let Some(root) = dir.ancestors().find(|d| is_workspace_root(d)) {
            return Ok(root.to_path_buf());
        }
    }
    let cwd = std::env::current_dir().context("reading the current directory")?;
    cwd.ancestors()
        .find(|dir| is_workspace_root(dir))
        .map(Path::to_path_buf)
        .with_context(|| {
            format!(
                "{} is not inside a Cargo workspace; run `cargo xtask` from the repository or pass --workspace DIR",
                cwd.display()
            )
        })
}

fn is_workspace_root(dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(dir.join(ROOT_MANIFEST)) else {
        return false;
    };
    toml::from_str::<toml::Table>(&text).is_ok_and(|t| t.contains_key("workspace"))
}

/// The pinned toolchain version, from rust-toolchain.toml.
pub fn toolchain_version(file: &Path) -> Result<String> {
    let content = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    toolchain_channel(&content, file)
}

/// The workspace's toolchain file: `rust-toolchain.toml`, else the legacy `rust-toolchain`.
pub fn toolchain_file(root: &Path) -> Option<&'static str> {
    [TOOLCHAIN_FILE, LEGACY_TOOLCHAIN_FILE]
        .into_iter()
        .find(|name| root.join(name).is_file())
}

pub fn toolchain_channel(content: &[u8], file: &Path) -> Result<String> {
    let text =
        std::str::from_utf8(content).with_context(|| format!("{} is not UTF-8", file.display()))?;
    // The legacy file may hold just the channel (`1.70.0`, `stable`).
    let bare = text.trim();
    if file.file_name().is_some_and(|n| n == LEGACY_TOOLCHAIN_FILE)
        && !bare.is_empty()
        && !bare.contains(['[', '=', '\n'])
    {
        return Ok(bare.to_owned());
    }
    let parsed: toml::Table = toml::from_str(text)
        .map_err(|err| anyhow::anyhow!("{}: {}", file.display(), err.to_string().trim_end()))?;
    parsed
        .get("toolchain")
        .and_then(|t| t.get("channel"))
        .and_then(toml::Value::as_str)
        .map(str::to_owned)
        .with_context(|| {
            format!(
                "{}: missing [toolchain] channel = \"<version>\"",
                file.display()
            )
        })
}

/// The schema files the seed is checked against, in the order they apply: what Supabase
/// provides, then the migrations in timestamp order.
pub fn schema_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut files = vec![root.join(SUPABASE_COMPAT_SQL)];
    let mut migrations: Vec<PathBuf> = std::fs::read_dir(root.join(MIGRATIONS_DIR))
        .with_context(|| format!("reading {MIGRATIONS_DIR}"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    migrations.retain(|p| p.extension().is_some_and(|e| e == "sql"));
    migrations.sort();
    files.extend(migrations);
    Ok(files)
}

/// The workspace a task operates on, with its shell, configuration and run labels.
pub struct Workspace {
    pub root: PathBuf,
    pub sh: Shell,
    pub config: Config,
    /// Extra KEY=VALUE labels for everything this run creates (tests use them for cleanup).
    pub labels: Vec<String>,
    /// `--no-wait`: refuse instead of waiting when another command holds the stack's lock.
    pub no_wait: bool,
    target_dir: OnceLock<PathBuf>,
    metadata: OnceLock<Vec<u8>>,
}

impl Workspace {
    pub fn open(root: Option<PathBuf>, labels: Vec<String>) -> Result<Self> {
        for label in &labels {
            if !label.contains('=') {
                bail!("--label {label:?}: expected KEY=VALUE");
            }
        }
        let root = match root {
            Some(dir) => dir
                .canonicalize()
                .with_context(|| format!("--workspace {}: no such directory", dir.display()))?,
            None => find_root()?,
        };
        let sh = Shell::new().context("creating the command shell")?;
        sh.change_dir(&root);
        let config = Config::load(&root.join(ROOT_MANIFEST))?;
        Ok(Workspace {
            root,
            sh,
            config,
            labels,
            no_wait: false,
            target_dir: OnceLock::new(),
            metadata: OnceLock::new(),
        })
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// `cargo metadata --no-deps` of the workspace as JSON, run once per run: the base hash
    /// and the target directory both read it.
    pub fn metadata_json(&self) -> Result<&[u8]> {
        if let Some(json) = self.metadata.get() {
            return Ok(json);
        }
        // cargo's complaint goes into the error, not onto the terminal: callers may have a
        // fallback (a fixture workspace that is not a whole Cargo workspace).
        let out = self
            .sh
            .cmd("cargo")
            .args(["metadata", "--no-deps", "--format-version", "1"])
            .quiet()
            .ignore_status()
            .output()
            .context("running cargo metadata")?;
        if !out.status.success() {
            bail!(
                "cargo metadata failed:\n{}",
                String::from_utf8_lossy(&out.stderr).trim_end()
            );
        }
        Ok(self.metadata.get_or_init(|| out.stdout))
    }

    /// The workspace's real target directory, as cargo sees it (`CARGO_TARGET_DIR`,
    /// `build.target-dir`).
    pub fn target_dir(&self) -> Result<&Path> {
        if let Some(dir) = self.target_dir.get() {
            return Ok(dir);
        }
        let metadata: serde_json::Value = serde_json::from_slice(self.metadata_json()?)
            .context("parsing cargo metadata for the target directory")?;
        let dir = metadata["target_directory"].as_str().context(
            "parsing cargo metadata for the target directory: no string `target_directory`",
        )?;
        Ok(self.target_dir.get_or_init(|| PathBuf::from(dir)))
    }

    /// Uses `dir` as the target directory (when none was found yet): a checkout inside another
    /// workspace's target directory (a preview's tree) shares that workspace's caches.
    pub fn use_target_dir(&self, dir: &Path) {
        let _ = self.target_dir.set(dir.to_path_buf());
    }

    /// Scratch space for xtask under the target directory, created on demand.
    pub fn scratch(&self, name: &str) -> Result<PathBuf> {
        let dir = self.target_dir()?.join("xtask").join(name);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(dir)
    }

    /// `--label` arguments for docker: the managed label plus this run's extra labels.
    pub fn label_args(&self) -> Vec<String> {
        let mut args = vec!["--label".to_owned(), format!("{MANAGED_LABEL}=true")];
        for label in &self.labels {
            args.push("--label".to_owned());
            args.push(label.clone());
        }
        args
    }
}

// The project's xtask configuration: `[workspace.metadata.xtask]` in the root Cargo.toml.

/// The registry `cargo xtask setup` runs when the configured registry is this one.
pub const LOCAL_REGISTRY_HOSTS: [&str; 3] = ["127.0.0.1", "localhost", "[::1]"];

/// Every key is optional: a missing one keeps its value from [`Config::default`].
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Config {
    /// host[:port] of the registry images are pushed to.
    pub registry: String,
    pub base_image: String,
    pub app_image: String,
    /// Empty: the workspace's packages with a binary (see base/hash.rs).
    pub app_packages: Vec<String>,
    pub base_inputs: Vec<String>,
    /// Files and directories beyond the crates that the app's build scripts read; they go into
    /// the app image's build context (and its hash), nothing else of the repository does.
    pub app_inputs: Vec<String>,
    /// The loopback port `cargo xtask up` publishes the API on, the same every run.
    pub api_port: u16,
    /// The loopback port of the local database (the Supabase CLI's default).
    pub db_port: u16,
    /// The local stack's name: its containers, network, volume and label derive from it, so a
    /// test can run a stack of its own beside a developer's.
    pub stack: String,
    /// The Render web service that `render.yaml` declares (see xtask/crates/deploy/src/deploy/blueprint.rs).
    #[serde(deserialize_with = "crate::tables::one")]
    pub render: RenderConfig,
    /// What one remote preview (a Render preview instance and a Supabase branch) costs per
    /// hour, in your billing currency: `preview list --remote` shows an estimate from it.
    pub preview_price_per_hour: Option<f64>,
}

/// `[workspace.metadata.xtask.render]`: what `render.yaml` says beyond the env spec. Every key
/// has a default, so the table may be left out.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct RenderConfig {
    /// The service's name on Render.
    pub service: String,
    /// `docker` (Render builds the Dockerfile from the repository) or `image` (Render runs an
    /// image that `cargo xtask deploy` pushed).
    pub runtime: String,
    /// For `runtime = "image"`: the image URL (default `<registry>/<app-image>:latest`).
    pub image: Option<String>,
    pub region: String,
    pub plan: String,
    pub instances: u32,
    pub health_check_path: String,
    /// `automatic`, `manual` or `off`: preview environments for pull requests.
    pub previews: String,
    /// Days a preview with no new commits lives before Render deletes it.
    pub preview_expire_after_days: u32,
    /// Fixed values of non-secret variables, written inline (e.g. `LOG_LEVEL = "info"`).
    pub env: std::collections::BTreeMap<String, String>,
    /// The service `cargo xtask deploy --target T` ships to, per target:
    /// `service-id = { production = "srv-…", staging = "srv-…" }`. `RENDER_SERVICE_ID`
    /// overrides it; deploy validates it (xtask/crates/deploy/src/deploy/settings.rs).
    pub service_id: std::collections::BTreeMap<String, String>,
}

impl Default for RenderConfig {
    fn default() -> Self {
        RenderConfig {
            service: "openeu-api".to_owned(),
            runtime: "docker".to_owned(),
            image: None,
            // The EU's data, the EU's region.
            region: "frankfurt".to_owned(),
            plan: "starter".to_owned(),
            instances: 1,
            health_check_path: "/ready".to_owned(),
            previews: "automatic".to_owned(),
            preview_expire_after_days: 7,
            env: std::collections::BTreeMap::from([("LOG_LEVEL".to_owned(), "info".to_owned())]),
            service_id: std::collections::BTreeMap::new(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            registry: "127.0.0.1:5000".to_owned(),
            base_image: String::new(),
            app_image: String::new(),
            app_packages: Vec::new(),
            base_inputs: Vec::new(),
            app_inputs: Vec::new(),
            api_port: 54380,
            // The Supabase CLI's default.
            db_port: 54322,
            stack: "local".to_owned(),
            render: RenderConfig::default(),
            preview_price_per_hour: None,
        }
    }
}

/// The root manifest down to `[workspace.metadata.xtask]`; every other key is ignored.
#[derive(serde::Deserialize)]
struct RootManifest {
    #[serde(default, deserialize_with = "crate::tables::optional")]
    workspace: Option<WorkspaceTable>,
}
#[derive(serde::Deserialize)]
struct WorkspaceTable {
    #[serde(default, deserialize_with = "crate::tables::optional")]
    metadata: Option<Metadata>,
}
#[derive(serde::Deserialize)]
struct Metadata {
    #[serde(default, deserialize_with = "crate::tables::optional")]
    xtask: Option<Config>,
}

impl Config {
    pub fn load(manifest: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(manifest)
            .with_context(|| format!("reading {}", manifest.display()))?;
        let parsed: RootManifest = toml::from_str(&text).with_context(|| {
            format!("{}: invalid [workspace.metadata.xtask]", manifest.display())
        })?;
        // Any workspace works without the table (`--workspace DIR` on another repository):
        // images are named after the directory, the app packages are the binary packages.
        let mut config = parsed
            .workspace
            .and_then(|w| w.metadata)
            .and_then(|m| m.xtask)
            .unwrap_or_default();
        let dir_name = manifest
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_else(|| "workspace".to_owned());
        if config.base_image.is_empty() {
            config.base_image = format!("{dir_name}-base");
        }
        if config.app_image.is_empty() {
            config.app_image = format!("{dir_name}-app");
        }
        // The deploy environment names its registry; the manifest's value is the local default.
        if let Ok(server) = std::env::var("DOCKER_REGISTRY_SERVER")
            && !server.trim().is_empty()
        {
            config.registry = server.trim().trim_end_matches('/').to_owned();
        }
        Ok(config)
    }

    pub fn base_repository(&self) -> String {
        format!("{}/{}", self.registry, self.base_image)
    }

    /// `openeu-<stack>-<part>`: the names of the local stack's containers, network and volume.
    pub fn stack_name(&self, part: &str) -> String {
        if part.is_empty() {
            format!("openeu-{}", self.stack)
        } else {
            format!("openeu-{}-{part}", self.stack)
        }
    }

    /// The label on everything of the local stack.
    pub fn stack_label(&self) -> (String, String) {
        ("org.openeu.stack".to_owned(), self.stack.clone())
    }

    pub fn app_repository(&self) -> String {
        format!("{}/{}", self.registry, self.app_image)
    }

    /// The host part of the registry, without the port.
    pub fn registry_host(&self) -> &str {
        registry_host(&self.registry)
    }

    /// Whether the registry is on this machine, where setup may start it and HTTP is plain.
    pub fn registry_is_local(&self) -> bool {
        LOCAL_REGISTRY_HOSTS.contains(&self.registry_host())
    }
}

pub fn registry_host(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        // An IPv6 literal: keep the brackets, drop the port.
        return rest.find(']').map_or(registry, |end| &registry[..end + 2]);
    }
    registry.split(':').next().unwrap_or(registry)
}

/// Machine-wide state (registry storage, daemon logs, locks), shared by every checkout.
pub fn state_dir() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_STATE_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => {
            PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".local/state")
        }
    };
    Ok(base.join("openeu-backend"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_host_drops_the_port() {
        assert_eq!(registry_host("127.0.0.1:5000"), "127.0.0.1");
        assert_eq!(registry_host("ghcr.io"), "ghcr.io");
        assert_eq!(registry_host("[::1]:5000"), "[::1]");
    }

    /// A bad `[workspace.metadata.xtask]` is named by key, line and column in serde's words.
    #[test]
    fn bad_config_keys_are_named_with_their_place() {
        let parse = |text: &str| {
            toml::from_str::<RootManifest>(text)
                .err()
                .unwrap()
                .to_string()
        };
        let cases = [
            (
                "[workspace.metadata.xtask]\ncolour = 1\n",
                "line 2, column 1",
                "unknown field `colour`, expected one of `registry`, `base-image`, `app-image`, `app-packages`, `base-inputs`, `app-inputs`, `api-port`, `db-port`, `stack`, `render`, `preview-price-per-hour`",
            ),
            (
                "[workspace.metadata.xtask]\napi-port = \"80\"\n",
                "line 2, column 12",
                "invalid type: string \"80\", expected u16",
            ),
            (
                "[workspace.metadata.xtask]\napi-port = 70000\n",
                "line 2, column 12",
                "invalid value: integer `70000`, expected u16",
            ),
            (
                "[workspace.metadata.xtask]\napp-packages = \"a\"\n",
                "line 2, column 16",
                "invalid type: string \"a\", expected a sequence",
            ),
            (
                "[workspace.metadata.xtask.render]\nregionn = \"x\"\n",
                "line 2, column 1",
                "unknown field `regionn`, expected one of `service`, `runtime`, `image`, `region`, `plan`, `instances`, `health-check-path`, `previews`, `preview-expire-after-days`, `env`, `service-id`",
            ),
            (
                "[workspace.metadata.xtask.render]\ninstances = \"2\"\n",
                "line 2, column 13",
                "invalid type: string \"2\", expected u32",
            ),
            (
                "[workspace.metadata.xtask.render]\nenv = { A = 1 }\n",
                "line 2, column 13",
                "invalid type: integer `1`, expected a string",
            ),
            (
                "[workspace.metadata]\nxtask = 3\n",
                "line 2, column 9",
                "invalid type: integer `3`, expected struct Config",
            ),
            // serde's derive would read a struct from an array of its values: refused here.
            (
                "[workspace.metadata]\nxtask = [\"r\"]\n",
                "line 2, column 9",
                "invalid type: sequence, expected struct Config",
            ),
        ];
        for (text, place, message) in cases {
            let err = parse(text);
            assert!(err.contains(place), "{place} in {err}");
            assert!(err.trim_end().ends_with(message), "{message} in {err}");
        }
        let config =
            toml::from_str::<RootManifest>("[workspace.metadata.xtask.render]\nplan = \"pro\"\n")
                .unwrap()
                .workspace
                .and_then(|w| w.metadata)
                .and_then(|m| m.xtask)
                .unwrap();
        assert_eq!(
            (
                config.render.plan.as_str(),
                config.render.region.as_str(),
                config.api_port
            ),
            ("pro", "frankfurt", 54380)
        );
    }
}
