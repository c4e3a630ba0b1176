//! The app image's build context: exactly what the binary compiles from, and its hash.
//!
//! - the app packages (`app-packages`) and the workspace crates they depend on (normal and
//!   build dependencies, followed through path dependencies), without their tests, benches and
//!   examples;
//! - every other member as its manifest plus stub sources (cargo needs each member of the
//!   workspace to exist, not to compile): editing xtask changes nothing here;
//! - the root manifest, Cargo.lock, rust-toolchain.toml, .cargo/config*, the Dockerfile;
//! - `app-inputs`: files the app's build scripts read (supabase/migrations, for the migration
//!   the service expects).
//!
//! The seed, the local database, the README and xtask stay out, so changing them neither
//! invalidates the build nor changes the hash that names the image.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use xtask_core::{
    files::{self, hex},
    workspace::{self, Workspace},
};

use crate::base::hash::BaseInputs;

/// Bumped whenever the context's rules change, so an old image is not reused by mistake.
const SCHEME: &str = "openeu-app-context v1";

/// Member subdirectories that `cargo build` of a binary never reads.
const NOT_BUILT: [&str; 4] = ["tests", "benches", "examples", "target"];

/// The files of the context (relative path with `/` → content), in a stable order.
pub struct BuildContext {
    pub files: BTreeMap<String, Vec<u8>>,
}

impl BuildContext {
    /// The hash of the context and of the build arguments that change the binary (the base
    /// reference): the image's identity. The git revision is not part of it.
    pub fn hash(&self, base_ref: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(SCHEME.as_bytes());
        hasher.update(b"\0");
        hasher.update(base_ref.as_bytes());
        for (path, content) in &self.files {
            hasher.update(b"\0");
            hasher.update(path.as_bytes());
            hasher.update(b"\0");
            hasher.update(Sha256::digest(content));
        }
        hex(&hasher.finalize())[..32].to_owned()
    }

    /// Writes the context into a fresh `dir`.
    pub fn write(&self, dir: &Path) -> Result<()> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
        }
        for (relative, content) in &self.files {
            let path = dir.join(relative);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(&path, content)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}

// `cargo metadata` adds keys over time: the ones not read here are ignored.
#[derive(serde::Deserialize)]
struct Metadata {
    packages: Vec<Package>,
}

#[derive(serde::Deserialize)]
struct Package {
    name: String,
    manifest_path: PathBuf,
    dependencies: Vec<Dependency>,
}

#[derive(serde::Deserialize)]
struct Dependency {
    name: String,
    kind: Option<String>,
    path: Option<PathBuf>,
}

/// Collects the context of the workspace `ws`; `base` gives the stub sources of the members the
/// app does not compile.
pub fn collect(ws: &Workspace, base: &BaseInputs) -> Result<BuildContext> {
    let out = ws
        .sh
        .cmd("cargo")
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .quiet()
        .read()
        .context("running cargo metadata")?;
    let metadata: Metadata = serde_json::from_str(&out).context("parsing cargo metadata")?;
    let root = &ws.root;
    let relative = |path: &Path| -> Result<String> {
        let rel = path
            .strip_prefix(root)
            .with_context(|| format!("{} is outside the workspace", path.display()))?;
        Ok(rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/"))
    };

    // The app packages and, transitively, the workspace crates they build with.
    let by_name: BTreeMap<&str, &Package> = metadata
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p))
        .collect();
    let mut compiled: BTreeSet<&str> = BTreeSet::new();
    let mut queue: Vec<&str> = ws.config.app_packages.iter().map(String::as_str).collect();
    while let Some(name) = queue.pop() {
        let Some(package) = by_name.get(name) else {
            bail!(
                "[workspace.metadata.xtask] app-packages names `{name}`, which is not a workspace member"
            );
        };
        if !compiled.insert(name) {
            continue;
        }
        for dep in &package.dependencies {
            let built = dep.kind.as_deref().is_none_or(|k| k == "build");
            if built && dep.path.is_some() && by_name.contains_key(dep.name.as_str()) {
                queue.push(dep.name.as_str());
            }
        }
    }

    let mut files = BTreeMap::new();
    let add = |files: &mut BTreeMap<String, Vec<u8>>, path: &Path| -> Result<()> {
        let content = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        files.insert(relative(path)?, content);
        Ok(())
    };

    // The root. The manifest goes in as it is, xtask's configuration included: a stack of its
    // own (a test's) then has an image of its own, never a layer cache shared with another.
    for file in [
        workspace::ROOT_MANIFEST,
        workspace::LOCKFILE,
        workspace::TOOLCHAIN_FILE,
        workspace::APP_DOCKERFILE,
    ]
    .into_iter()
    .chain(workspace::CARGO_CONFIG_FILES)
    {
        let path = ws.path(file);
        if path.is_file() {
            add(&mut files, &path)?;
        }
    }

    // Members: the compiled ones whole (minus what a build never reads), the rest stubbed.
    let mut stub_dirs = Vec::new();
    for package in &metadata.packages {
        let dir = package
            .manifest_path
            .parent()
            .context("a manifest's directory")?;
        if compiled.contains(package.name.as_str()) {
            // Explicit test, bench or example targets must exist for cargo to read the
            // manifest; only implicit ones are left out.
            let manifest = std::fs::read_to_string(&package.manifest_path)
                .with_context(|| format!("reading {}", package.manifest_path.display()))?;
            let explicit = ["[[test]]", "[[bench]]", "[[example]]"]
                .iter()
                .any(|t| manifest.contains(t));
            add_tree(&mut files, dir, !explicit, &relative)?;
        } else {
            add(&mut files, &package.manifest_path)?;
            let rel = relative(dir)?;
            stub_dirs.push(if rel.is_empty() {
                rel
            } else {
                format!("{rel}/")
            });
        }
    }
    for (path, content) in &base.member_stubs {
        if stub_dirs.iter().any(|dir| path.starts_with(dir.as_str())) {
            files.insert(path.clone(), content.as_bytes().to_vec());
        }
    }

    for input in &ws.config.app_inputs {
        let path = ws.path(input);
        if path.is_dir() {
            add_tree(&mut files, &path, false, &relative)?;
        } else if path.is_file() {
            add(&mut files, &path)?;
        } else {
            bail!("[workspace.metadata.xtask] app-inputs names `{input}`, which does not exist");
        }
    }
    Ok(BuildContext { files })
}

/// Every file under `dir`; with `member`, without the member's tests, benches, examples and
/// target directory (the latter always).
fn add_tree(
    files: &mut BTreeMap<String, Vec<u8>>,
    dir: &Path,
    member: bool,
    relative: &dyn Fn(&Path) -> Result<String>,
) -> Result<()> {
    // Only the top level's target/ (and a member's tests, benches, examples) stay out.
    let left_out = |sub: &Path| {
        sub.parent() == Some(Path::new(""))
            && (sub == Path::new("target")
                || member && NOT_BUILT.iter().any(|n| sub == Path::new(n)))
    };
    for path in files::tree_files(dir, files::Links::Refuse, left_out)? {
        let content =
            std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        files.insert(relative(&path)?, content);
    }
    Ok(())
}
