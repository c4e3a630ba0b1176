//! The content hash of everything that goes into the base image. Pure logic: it reads files but
//! runs nothing, so every rule here is unit-tested without Docker.
//!
//! The inputs are normalised so that edits which cannot change the compiled dependencies
//! (comments, formatting, key order, member versions, descriptive metadata) leave the hash alone,
//! while everything else is kept. The normalised inputs are also exactly what the base build
//! context contains, so the hash cannot miss an input.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Component, Path, PathBuf},
};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use toml::{Table, Value};

use super::graph;
use inputs::{
    cargo_config_inputs, described_inputs, manifest_inputs, pruned_lock_input,
    toolchain_and_extra_inputs,
};
use normalise::{ManifestRules, lexical_normalise, normalise_cargo_config};
use xtask_core::{
    files::hex,
    workspace::{self, Config},
};

/// Bumped whenever the normalisation rules change, so old tags are not reused by mistake.
const SCHEME: &str = "openeu-base-hash v4";

/// The profile the base image builds (the `CARGO_PROFILE` build argument). Only it and the
/// profiles it inherits from can change what the base compiles; every other profile table,
/// `dev`, `test` and custom ones alike, is dropped.
const BUILT_PROFILE: &str = "release";

/// Where the build context keeps what xtask tells Dockerfile.base.
pub const CONTEXT_PACKAGES: &str = ".xtask/packages";
pub const CONTEXT_MEMBERS: &str = ".xtask/members";

/// The part of `cargo metadata --format-version 1` that hashing needs.
/// `cargo metadata` adds keys over time: the ones not read here are ignored.
#[derive(Debug, serde::Deserialize)]
pub struct Metadata {
    pub packages: Vec<Package>,
    pub workspace_members: Vec<String>,
    /// Present when cargo metadata ran with dependencies.
    pub resolve: Option<graph::Resolve>,
}

#[derive(Debug, serde::Deserialize)]
pub struct Package {
    pub name: String,
    pub id: String,
    #[serde(default)]
    pub version: String,
    pub source: Option<String>,
    pub manifest_path: PathBuf,
    pub targets: Vec<CargoTarget>,
}

/// One of a package's cargo targets (lib, bin, build script, …), as `cargo metadata` lists it.
#[derive(Debug, serde::Deserialize)]
pub struct CargoTarget {
    pub kind: Vec<String>,
    pub name: String,
    pub src_path: PathBuf,
}

/// One hashed input, and where it goes in the build context (if it is a file there).
#[derive(Debug, Clone)]
pub struct Input {
    pub name: String,
    pub content: Vec<u8>,
    pub context_path: Option<String>,
}

impl Input {
    pub fn digest(&self) -> String {
        hex(&Sha256::digest(&self.content))
    }
}

/// All inputs of the base image and their combined hash.
#[derive(Debug)]
pub struct BaseInputs {
    pub inputs: Vec<Input>,
    /// Stub sources written into the context; their layout is itself an input.
    pub stubs: Vec<Stub>,
    /// Stub sources of every workspace member (declared tests, benches and examples
    /// included), for the app image's context, which stubs the members it does not compile.
    /// Not a base input: the app context hashes its own files.
    pub member_stubs: Vec<Stub>,
    pub build_args: Vec<(String, String)>,
    pub hash: String,
}

impl BaseInputs {
    /// The inputs in name order, and their combined hash: the key.
    fn new(
        mut inputs: Vec<Input>,
        stubs: Vec<Stub>,
        member_stubs: Vec<Stub>,
        build_args: Vec<(String, String)>,
    ) -> BaseInputs {
        inputs.sort_by(|a, b| a.name.cmp(&b.name));
        let digests: BTreeMap<String, String> = inputs
            .iter()
            .map(|i| (i.name.clone(), i.digest()))
            .collect();
        let hash = combine(&digests);
        BaseInputs {
            inputs,
            stubs,
            member_stubs,
            build_args,
            hash,
        }
    }

    /// The image tag: a prefix of the hash, long enough to never collide in practice.
    pub fn tag(&self) -> &str {
        &self.hash[..32]
    }

    /// Input name → digest, the form stored in the image label and compared by `base diff`.
    pub fn digests(&self) -> BTreeMap<String, String> {
        self.inputs
            .iter()
            .map(|i| (i.name.clone(), i.digest()))
            .collect()
    }
}

/// Combines per-input digests into the base hash: order-independent, name-sensitive.
pub fn combine(digests: &BTreeMap<String, String>) -> String {
    let mut hasher = Sha256::new();
    for (name, digest) in digests {
        hasher.update(name.as_bytes());
        hasher.update(b"\0");
        hasher.update(digest.as_bytes());
        hasher.update(b"\n");
    }
    hex(&hasher.finalize())
}

/// The files cargo needs to derive the context's lockfile: the pruned manifests, the stub
/// sources and the cargo config, each at its path in the context.
pub struct Staging<'a> {
    pub files: Vec<(String, Vec<u8>)>,
    /// The workspace's own Cargo.lock: cargo keeps its versions for the packages that remain.
    pub lockfile: &'a str,
}

/// The app packages: the configured ones, else the workspace's packages with a binary.
pub fn app_packages(config: &Config, metadata: &Metadata) -> Vec<String> {
    if !config.app_packages.is_empty() {
        return config.app_packages.clone();
    }
    let mut names: Vec<String> = metadata
        .packages
        .iter()
        .filter(|p| metadata.workspace_members.contains(&p.id))
        .filter(|p| p.targets.iter().any(|t| t.kind.iter().any(|k| k == "bin")))
        .map(|p| p.name.clone())
        .collect();
    names.sort();
    names
}

/// Collects and normalises every input of the base image of the workspace at `root`, from
/// `cargo metadata --filter-platform <image triple>` with dependencies. `prune_lock` runs
/// cargo over the staged context and returns the lockfile it writes for it.
pub fn collect(
    root: &Path,
    metadata: &Metadata,
    config: &Config,
    image_platform: &graph::Platform,
    prune_lock: &dyn Fn(&Staging<'_>) -> Result<String>,
) -> Result<BaseInputs> {
    let (members, member_dirs) = workspace_members(metadata);
    let member_names: BTreeSet<&str> = members.iter().map(|p| p.name.as_str()).collect();
    let app_packages = checked_app_packages(root, config, metadata, &member_names)?;
    let resolve = metadata
        .resolve
        .as_ref()
        .context("cargo metadata gave no resolved graph (it ran with --no-deps)")?;
    let by_id: BTreeMap<&str, &Package> = metadata
        .packages
        .iter()
        .map(|p| (p.id.as_str(), p))
        .collect();
    let nodes: BTreeMap<&str, &graph::Node> =
        resolve.nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    let roots: Vec<&str> = members
        .iter()
        .filter(|p| app_packages.contains(&p.name))
        .map(|p| p.id.as_str())
        .collect();
    let root_text = std::fs::read_to_string(root.join(workspace::ROOT_MANIFEST))
        .with_context(|| format!("reading {}", root.join(workspace::ROOT_MANIFEST).display()))?;
    let resolver_v1 = resolver_is_v1(&root_text);
    let closure = graph::closure(resolve, &roots, resolver_v1);

    let mut inputs = Vec::new();
    let rules = ManifestRules {
        root,
        member_dirs: &member_dirs,
    };

    // The root manifest, whether virtual or a package itself. Each manifest is parsed once:
    // the normalised table gives both the hashed text and the targets to stub.
    let root_manifest = root.join(workspace::ROOT_MANIFEST);
    let root_is_member = member_dirs.contains(root);
    let root_text = std::fs::read_to_string(&root_manifest)
        .with_context(|| format!("reading {}", root_manifest.display()))?;
    let (_, mut root_table) = rules.normalise(&root_text, &root_manifest, root_is_member)?;
    let member_stubs = all_member_stubs(root, &members, &rules, &root_table)?;
    let workspace_table = root_table
        .get("workspace")
        .and_then(Value::as_table)
        .cloned()
        .unwrap_or_default();
    let ws_package = workspace_table.get("package").and_then(Value::as_table);
    let ws_dependencies = workspace_table
        .get("dependencies")
        .and_then(Value::as_table);

    // The members the base builds: the closure's, the root package, and those that [patch] or
    // [replace] name (cargo reads them while resolving).
    let patched = patched_member_dirs(root, &root_table);
    let in_context: Vec<&Package> = members
        .iter()
        .copied()
        .filter(|p| {
            let dir = p.manifest_path.parent();
            closure.contains(&p.id) || dir == Some(root) || dir.is_some_and(|d| patched.contains(d))
        })
        .collect();
    let pruning = Pruning {
        root,
        nodes: &nodes,
        by_id: &by_id,
        ws_package,
        ws_dependencies,
        platform: image_platform,
        resolver_v1,
    };

    let root_package = in_context
        .iter()
        .copied()
        .find(|p| p.manifest_path.parent() == Some(root));
    if let Some(package) = root_package {
        pruning.prune(package, &mut root_table, &root_manifest)?;
    }
    restrict_workspace(root, &mut root_table, &in_context)?;

    // Manifests are independent: normalise them on every core (a 500-member workspace hashes
    // in about the time cargo metadata takes).
    let others: Vec<&Package> = in_context
        .iter()
        .copied()
        .filter(|p| p.manifest_path.parent() != Some(root))
        .collect();
    let per_member = parallel_map(&others, |package| -> Result<Table> {
        let text = std::fs::read_to_string(&package.manifest_path)
            .with_context(|| format!("reading {}", package.manifest_path.display()))?;
        let (_, mut table) = rules.normalise(&text, &package.manifest_path, true)?;
        pruning.prune(package, &mut table, &package.manifest_path)?;
        Ok(table)
    });
    let mut tables: Vec<Table> = per_member.into_iter().collect::<Result<_>>()?;

    // Which member declares a shared registry package stops mattering (graph::hoist_shared).
    let root_member = root_package.map(|package| (package, &mut root_table));
    hoist_shared(
        resolve,
        &closure,
        &by_id,
        &app_packages,
        root_member,
        others.iter().copied().zip(tables.iter_mut()),
        image_platform,
    );

    let (manifests, stubs) = manifest_inputs(
        root,
        &root_table,
        root_package,
        others.iter().copied().zip(&tables),
    )?;
    inputs.extend(manifests);

    inputs.extend(cargo_config_inputs(root)?);

    inputs.push(pruned_lock_input(root, &inputs, &stubs, prune_lock)?);

    let rust_version = toolchain_and_extra_inputs(root, config, &mut inputs)?;

    let build_args = vec![
        ("CARGO_PROFILE".to_owned(), BUILT_PROFILE.to_owned()),
        ("RUST_VERSION".to_owned(), rust_version),
    ];
    let mut context_names: Vec<&str> = in_context.iter().map(|p| p.name.as_str()).collect();
    context_names.sort();
    context_names.dedup();
    inputs.extend(described_inputs(
        &build_args,
        &app_packages,
        &context_names,
        &stubs,
    ));

    Ok(BaseInputs::new(inputs, stubs, member_stubs, build_args))
}

/// What pruning a member's manifest to the image's build needs: the resolved graph and the
/// workspace's inherited tables.
struct Pruning<'a> {
    root: &'a Path,
    nodes: &'a BTreeMap<&'a str, &'a graph::Node>,
    by_id: &'a BTreeMap<&'a str, &'a Package>,
    ws_package: Option<&'a Table>,
    ws_dependencies: Option<&'a Table>,
    platform: &'a graph::Platform,
    resolver_v1: bool,
}

impl Pruning<'_> {
    /// Prunes `table` (the manifest `file` of `package`) to what the image's build compiles.
    fn prune(&self, package: &Package, table: &mut Table, file: &Path) -> Result<()> {
        let node = self
            .nodes
            .get(package.id.as_str())
            .with_context(|| format!("cargo metadata has no resolved node for {}", package.id))?;
        let edges = edges(node, self.by_id);
        let enabled: BTreeSet<&str> = node.features.iter().map(String::as_str).collect();
        let depth = file
            .parent()
            .and_then(|d| d.strip_prefix(self.root).ok())
            .map_or(0, |d| d.components().count());
        let inherited = graph::Inherited {
            package: self.ws_package,
            dependencies: self.ws_dependencies,
            member_depth: depth,
            platform: self.platform,
            resolver_v1: self.resolver_v1,
        };
        graph::prune_member(table, &edges, &enabled, &inherited, file)
    }
}

/// The resolved dependency edges of `node`, each with the package it reaches.
fn edges<'a>(node: &'a graph::Node, by_id: &BTreeMap<&str, &'a Package>) -> Vec<graph::Edge<'a>> {
    node.deps
        .iter()
        .filter_map(|dep| {
            let target = by_id.get(dep.pkg.as_str())?;
            Some(graph::Edge {
                dep,
                package_name: &target.name,
                version: &target.version,
                from_registry: target
                    .source
                    .as_deref()
                    .is_some_and(|s| s.starts_with("registry+") || s.starts_with("sparse+")),
            })
        })
        .collect()
}

/// The root manifest's `[workspace]` as the base build needs it: its members are the context's,
/// and only `resolver` stays beside them.
fn restrict_workspace(root: &Path, root_table: &mut Table, in_context: &[&Package]) -> Result<()> {
    let mut context_members: Vec<String> = in_context
        .iter()
        .filter_map(|p| p.manifest_path.parent())
        .filter(|d| *d != root)
        .map(|d| relative_slash(root, d))
        .collect::<Result<_>>()?;
    context_members.sort();
    if let Some(Value::Table(workspace)) = root_table.get_mut("workspace") {
        // Inherited settings are written out in each member; `exclude` and `default-members`
        // do not apply to a build that names its packages.
        workspace.retain(|key, _| key == "resolver" || key == "members");
        workspace.insert(
            "members".into(),
            Value::Array(context_members.iter().cloned().map(Value::String).collect()),
        );
    }
    Ok(())
}

/// The app packages (`[workspace.metadata.xtask] app-packages`, else the binary packages),
/// each checked to be a member.
fn checked_app_packages(
    root: &Path,
    config: &Config,
    metadata: &Metadata,
    member_names: &BTreeSet<&str>,
) -> Result<Vec<String>> {
    let app_packages = app_packages(config, metadata);
    if app_packages.is_empty() {
        bail!(
            "{}: no app packages: the workspace has no binary package and [workspace.metadata.xtask] names no app-packages",
            root.join(workspace::ROOT_MANIFEST).display()
        );
    }
    for package in &app_packages {
        if !member_names.contains(package.as_str()) {
            bail!(
                "{}: [workspace.metadata.xtask] app-packages names `{package}`, which is not a workspace member",
                root.join(workspace::ROOT_MANIFEST).display()
            );
        }
    }
    Ok(app_packages)
}

/// Hoists the registry packages that several app-side members share into one holder, the first
/// app package by name (graph::hoist_shared), so which member declares one stops mattering.
fn hoist_shared<'a>(
    resolve: &graph::Resolve,
    closure: &BTreeSet<String>,
    by_id: &BTreeMap<&str, &Package>,
    app_packages: &[String],
    root_member: Option<(&'a Package, &'a mut Table)>,
    others: impl Iterator<Item = (&'a Package, &'a mut Table)>,
    image_platform: &graph::Platform,
) {
    let host = graph::host_side(resolve, closure, by_id);
    let (packages, mut refs): (Vec<&Package>, Vec<&mut Table>) =
        root_member.into_iter().chain(others).unzip();
    let eligible: Vec<bool> = packages
        .iter()
        .map(|p| closure.contains(&p.id) && !host.contains(&p.id))
        .collect();
    let holder = packages
        .iter()
        .enumerate()
        .filter(|(i, p)| eligible[*i] && app_packages.contains(&p.name))
        .min_by_key(|(_, p)| &p.name)
        .map(|(i, _)| i);
    if let Some(holder) = holder {
        graph::hoist_shared(&mut refs, &eligible, holder, image_platform);
    }
}

/// The workspace's member packages and their directories.
fn workspace_members(metadata: &Metadata) -> (Vec<&Package>, BTreeSet<PathBuf>) {
    let members: Vec<&Package> = metadata
        .packages
        .iter()
        .filter(|p| metadata.workspace_members.contains(&p.id))
        .collect();
    let member_dirs = members
        .iter()
        .filter_map(|p| p.manifest_path.parent().map(Path::to_path_buf))
        .collect();
    (members, member_dirs)
}

/// Normalises every manifest of the workspace, for its errors only (file, line and fix).
pub fn check_manifests(root: &Path, metadata: &Metadata) -> Result<()> {
    let (members, member_dirs) = workspace_members(metadata);
    let rules = ManifestRules {
        root,
        member_dirs: &member_dirs,
    };
    let root_manifest = root.join(workspace::ROOT_MANIFEST);
    let manifests = std::iter::once((root_manifest, member_dirs.contains(root)))
        .chain(members.iter().map(|p| (p.manifest_path.clone(), true)));
    for (manifest, is_member) in manifests {
        let text = std::fs::read_to_string(&manifest)
            .with_context(|| format!("reading {}", manifest.display()))?;
        rules.normalise(&text, &manifest, is_member)?;
    }
    Ok(())
}

/// The stub sources of every member as its own manifest declares them (scheme v3's rule).
fn all_member_stubs(
    root: &Path,
    members: &[&Package],
    rules: &ManifestRules<'_>,
    root_table: &Table,
) -> Result<Vec<Stub>> {
    let per_member = parallel_map(members, |package| -> Result<Vec<Stub>> {
        let dir = package
            .manifest_path
            .parent()
            .context("manifest path has no parent")?;
        if dir == root {
            return stub_sources(root, dir, package, root_table);
        }
        let text = std::fs::read_to_string(&package.manifest_path)
            .with_context(|| format!("reading {}", package.manifest_path.display()))?;
        let (_, table) = rules.normalise(&text, &package.manifest_path, true)?;
        stub_sources(root, dir, package, &table)
    });
    let mut stubs = Vec::new();
    for result in per_member {
        stubs.extend(result?);
    }
    stubs.sort();
    stubs.dedup();
    Ok(stubs)
}

/// Whether the workspace resolves features with resolver 1: `resolver = "1"`, or no resolver
/// with a virtual manifest or a root package of edition 2015 or 2018.
fn resolver_is_v1(root_manifest: &str) -> bool {
    let Ok(table) = toml::from_str::<Table>(root_manifest) else {
        return true;
    };
    let resolver = table
        .get("workspace")
        .and_then(|w| w.get("resolver"))
        .or_else(|| table.get("package").and_then(|p| p.get("resolver")))
        .and_then(Value::as_str);
    match resolver {
        Some(resolver) => resolver == "1",
        None => {
            let edition = table
                .get("package")
                .and_then(|p| p.get("edition"))
                .and_then(Value::as_str);
            !matches!(edition, Some(e) if e >= "2021")
        }
    }
}

/// Member directories that `[patch]` or `[replace]` of the root manifest point at.
fn patched_member_dirs(root: &Path, root_table: &Table) -> BTreeSet<PathBuf> {
    let mut specs: Vec<&Table> = Vec::new();
    // [patch.<source>.<name>] is a spec; [replace."<id>"] is one too.
    if let Some(Value::Table(sources)) = root_table.get("patch") {
        for entries in sources.values().filter_map(Value::as_table) {
            specs.extend(entries.values().filter_map(Value::as_table));
        }
    }
    if let Some(Value::Table(replaced)) = root_table.get("replace") {
        specs.extend(replaced.values().filter_map(Value::as_table));
    }
    specs
        .into_iter()
        .filter_map(|spec| spec.get("path").and_then(Value::as_str))
        .map(|path| lexical_normalise(&root.join(path)))
        .collect()
}

/// A stub source: its path in the context and its content.
type Stub = (String, &'static str);

const LIB_STUB: &str = "// stub written by cargo xtask base build\n";
const MAIN_STUB: &str = "fn main() {}\n";

/// The scheme's salt, also part of the cache key.
pub fn scheme() -> &'static str {
    SCHEME
}

/// The static stub of a stored content (the cache stores stubs by value).
pub fn stub_content(content: &str) -> Option<&'static str> {
    [LIB_STUB, MAIN_STUB].into_iter().find(|s| *s == content)
}

/// `f` over `items` on all available cores, results in order.
fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| scope.spawn(|| part.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("hashing thread panicked"))
            .collect()
    })
}

fn file_input(name: &str, context_path: &str, content: Vec<u8>) -> Input {
    Input {
        name: name.to_owned(),
        content,
        context_path: Some(context_path.to_owned()),
    }
}

fn raw_file(root: &Path, relative: &str) -> Result<Input> {
    let path = root.join(relative);
    let content = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(file_input(relative, relative, content))
}

fn relative_slash(root: &Path, path: &Path) -> Result<String> {
    let relative = path
        .strip_prefix(root)
        .with_context(|| format!("{} is outside the workspace", path.display()))?;
    Ok(relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/"))
}

/// Rust's name for the image's platform: what `cargo metadata --filter-platform` keeps.
pub fn image_triple() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "aarch64-unknown-linux-gnu",
        _ => "x86_64-unknown-linux-gnu",
    }
}

/// Docker's name for the platform we build for.
pub fn platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("linux/{arch}")
}

/// The stub sources a member needs in the base context: its library, its build script, its
/// default binary and every target the manifest declares by name (cargo requires those files).
/// Auto-discovered extra binaries, tests, benches and examples are left out, so adding one does
/// not change the hash; they compile no dependency that the library does not.
fn stub_sources(root: &Path, dir: &Path, package: &Package, manifest: &Table) -> Result<Vec<Stub>> {
    let declared = |section: &str, name: &str| {
        manifest
            .get(section)
            .and_then(Value::as_array)
            .is_some_and(|targets| {
                targets
                    .iter()
                    .any(|t| t.get("name").and_then(Value::as_str) == Some(name))
            })
    };
    let mut stubs = Vec::new();
    for target in &package.targets {
        let kind = target.kind.first().map(String::as_str).unwrap_or_default();
        let stub = match kind {
            "lib" | "rlib" | "dylib" | "cdylib" | "staticlib" | "proc-macro" => Some(LIB_STUB),
            "custom-build" => Some(MAIN_STUB),
            "bin"
                if target.src_path == dir.join("src/main.rs") || declared("bin", &target.name) =>
            {
                Some(MAIN_STUB)
            }
            "test" | "bench" | "example" if declared(kind, &target.name) => Some(MAIN_STUB),
            _ => None,
        };
        if let Some(content) = stub {
            stubs.push((relative_slash(root, &target.src_path)?, content));
        }
    }
    Ok(stubs)
}

mod inputs;
mod normalise;

#[cfg(test)]
mod tests;
