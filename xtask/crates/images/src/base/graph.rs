//! What the base compiles, from cargo's resolved graph (`cargo metadata --filter-platform
//! <image triple>`): the app packages' normal and build dependency closure on the image's
//! platform, with the features cargo resolves. Pure logic over parsed JSON and TOML tables.
//!
//! Each workspace member that the base builds gets a *pruned* manifest: the dependency entries
//! that are not in the resolved graph (dev-dependencies, other platforms' dependencies,
//! optional dependencies that no feature enables) and the `[features]` entries that nothing
//! enables are removed; inherited settings (`x.workspace = true`) are written out; registry
//! requirements become `=<locked version>`. Members outside the closure leave the context. The
//! pruned manifests, not the originals, are hashed and written into the build context, and
//! cargo derives the context's lockfile from them, so the context holds only what is hashed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use anyhow::{Result, bail};
use toml::{Table, Value};

/// `cargo metadata --format-version 1` with dependencies: the parts the key needs. Cargo adds
/// keys over time: the ones not read here are ignored.
#[derive(Debug, serde::Deserialize)]
pub struct Resolve {
    pub nodes: Vec<Node>,
}

#[derive(Debug, serde::Deserialize)]
pub struct Node {
    pub id: String,
    #[serde(default)]
    pub deps: Vec<NodeDep>,
    #[serde(default)]
    pub features: Vec<String>,
}

#[derive(Debug, serde::Deserialize)]
pub struct NodeDep {
    pub name: String,
    pub pkg: String,
    #[serde(default)]
    pub dep_kinds: Vec<DepKind>,
}

#[derive(Debug, serde::Deserialize)]
pub struct DepKind {
    pub kind: Option<String>,
    /// The `[target.<platform>]` table the edge comes from, as cargo prints it.
    pub target: Option<String>,
}

impl NodeDep {
    /// Whether `cargo build` of the dependent compiles this edge (normal or build, not dev).
    pub fn is_built(&self) -> bool {
        self.dep_kinds
            .iter()
            .any(|k| k.kind.as_deref() != Some("dev"))
    }

    /// Whether the edge comes from a table of `kind` under `platform` (`None`: the top-level
    /// table). `--filter-platform` has removed the edges of other platforms. Platforms compare
    /// without whitespace: cargo prints `cfg(target_os = "linux")` whatever the manifest wrote.
    fn has_kind(&self, kind: Kind, platform: Option<&str>) -> bool {
        let squash = |s: &str| s.split_whitespace().collect::<String>();
        self.dep_kinds.iter().any(|k| {
            let kind_matches = match kind {
                Kind::Normal => k.kind.is_none(),
                Kind::Build => k.kind.as_deref() == Some("build"),
                Kind::Dev => k.kind.as_deref() == Some("dev"),
            };
            kind_matches && k.target.as_deref().map(squash) == platform.map(squash)
        })
    }
}

/// The package ids reachable from `roots` through normal and build edges (and dev edges with
/// `include_dev`, for resolver 1, which unifies dev-dependencies' features into every build).
pub fn closure(resolve: &Resolve, roots: &[&str], include_dev: bool) -> BTreeSet<String> {
    let nodes: BTreeMap<&str, &Node> = resolve.nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut queue: VecDeque<&str> = roots.iter().copied().collect();
    while let Some(id) = queue.pop_front() {
        if !seen.insert(id.to_owned()) {
            continue;
        }
        if let Some(node) = nodes.get(id) {
            for dep in node.deps.iter().filter(|d| include_dev || d.is_built()) {
                queue.push_back(&dep.pkg);
            }
        }
    }
    seen
}

/// Closure packages compiled for the host: proc-macros, build dependencies, and everything
/// they depend on. Their dependencies get host-side features, so they are never hoisted.
pub fn host_side(
    resolve: &Resolve,
    closure: &BTreeSet<String>,
    packages: &BTreeMap<&str, &super::hash::Package>,
) -> BTreeSet<String> {
    let mut starts: Vec<&str> = Vec::new();
    for node in resolve.nodes.iter().filter(|n| closure.contains(&n.id)) {
        let is_proc_macro = packages.get(node.id.as_str()).is_some_and(|p| {
            p.targets
                .iter()
                .any(|t| t.kind.iter().any(|k| k == "proc-macro"))
        });
        if is_proc_macro {
            starts.push(&node.id);
        }
        for dep in &node.deps {
            if dep
                .dep_kinds
                .iter()
                .any(|k| k.kind.as_deref() == Some("build"))
            {
                starts.push(&dep.pkg);
            }
        }
    }
    self::closure(resolve, &starts, true)
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Normal,
    Build,
    Dev,
}

/// A resolved edge of one member, with what the pruning needs of its target package.
pub struct Edge<'a> {
    pub dep: &'a NodeDep,
    pub package_name: &'a str,
    pub version: &'a str,
    /// Registry packages get their requirement pinned to the locked version.
    pub from_registry: bool,
}

/// What the workspace root provides for inheritance (`x.workspace = true`).
pub struct Inherited<'a> {
    pub package: Option<&'a Table>,
    pub dependencies: Option<&'a Table>,
    /// The member's directory relative to the root, as path components, for rewriting the
    /// relative paths of inherited path dependencies.
    pub member_depth: usize,
    /// The image's platform, for `[target.<platform>]` tables.
    pub platform: &'a Platform,
    /// Resolver 1 unifies the features of dev-dependencies and of other platforms'
    /// dependencies into every build: those tables stay (normalised, not pruned).
    pub resolver_v1: bool,
}

/// The image's platform: its triple and its `cfg` values (`rustc --print cfg --target`).
#[derive(Debug, Default)]
pub struct Platform {
    pub triple: String,
    pub cfg: BTreeSet<String>,
}

impl Platform {
    /// From `rustc --print cfg` output: `unix`, `target_os="linux"`, one a line.
    pub fn new(triple: &str, print_cfg: &str) -> Platform {
        Platform {
            triple: triple.to_owned(),
            cfg: print_cfg
                .lines()
                .map(|l| l.split_whitespace().collect())
                .filter(|l: &String| !l.is_empty())
                .collect(),
        }
    }

    /// Whether a `[target.<key>]` table applies; `None` when the key cannot be read, so the
    /// caller keeps the table (keeping is always safe, dropping never is when unsure).
    /// `--filter-platform` alone does not settle it: an edge that some table of this platform
    /// keeps lists the other platforms' tables too.
    pub fn applies(&self, key: &str) -> Option<bool> {
        let squashed: String = key.split_whitespace().collect();
        match squashed
            .strip_prefix("cfg(")
            .and_then(|r| r.strip_suffix(')'))
        {
            Some(expr) => {
                let (value, rest) = self.eval(expr)?;
                rest.is_empty().then_some(value)
            }
            None if squashed.starts_with("cfg(") => None,
            None => Some(squashed == self.triple),
        }
    }

    /// Evaluates one cfg predicate at the start of `expr`; returns it and the rest.
    fn eval<'e>(&self, expr: &'e str) -> Option<(bool, &'e str)> {
        for (name, combine) in [("all(", 0), ("any(", 1), ("not(", 2)] {
            if let Some(mut rest) = expr.strip_prefix(name) {
                let mut values = Vec::new();
                loop {
                    if let Some(after) = rest.strip_prefix(')') {
                        rest = after;
                        break;
                    }
                    let (value, after) = self.eval(rest)?;
                    values.push(value);
                    rest = after.strip_prefix(',').unwrap_or(after);
                }
                let value = match combine {
                    0 => values.iter().all(|v| *v),
                    1 => values.iter().any(|v| *v),
                    _ => match values.as_slice() {
                        [one] => !one,
                        _ => return None,
                    },
                };
                return Some((value, rest));
            }
        }
        let end = expr.find([',', ')']).unwrap_or(expr.len());
        let (atom, rest) = expr.split_at(end);
        if atom.is_empty() || atom.matches('"').count() % 2 == 1 {
            return None;
        }
        Some((self.cfg.contains(atom), rest))
    }
}

const DEV_TABLES: [&str; 2] = ["dev-dependencies", "dev_dependencies"];
const BUILT_TABLES: [(&str, Kind); 3] = [
    ("dependencies", Kind::Normal),
    ("build-dependencies", Kind::Build),
    ("build_dependencies", Kind::Build),
];
/// Targets that `cargo build` never compiles; their tables leave the pruned manifest.
const UNBUILT_TARGETS: [&str; 3] = ["test", "bench", "example"];

/// Prunes one member's normalised manifest to what `cargo build` of the app packages compiles
/// (see the module header). `enabled` are the member's features in the resolved graph.
pub fn prune_member(
    manifest: &mut Table,
    edges: &[Edge<'_>],
    enabled: &BTreeSet<&str>,
    inherited: &Inherited<'_>,
    file: &std::path::Path,
) -> Result<()> {
    if let Some(Value::Table(package)) = manifest.get_mut("package") {
        inherit_package_keys(package, inherited.package);
    }
    let v1 = inherited.resolver_v1;
    for table in UNBUILT_TARGETS {
        manifest.remove(table);
    }
    if !v1 {
        for table in DEV_TABLES {
            manifest.remove(table);
        }
    }
    let mut kept_names = BTreeSet::new();
    prune_dependency_tables(
        manifest,
        None,
        false,
        edges,
        inherited,
        &mut kept_names,
        file,
    )?;
    if let Some(Value::Table(targets)) = manifest.get_mut("target") {
        for (name, platform) in targets.iter_mut() {
            if let Value::Table(platform) = platform {
                if !v1 {
                    for table in DEV_TABLES {
                        platform.remove(table);
                    }
                    if inherited.platform.applies(name) == Some(false) {
                        platform.retain(|_, _| false);
                        continue;
                    }
                }
                let name = Some(name.as_str());
                prune_dependency_tables(
                    platform,
                    name,
                    v1,
                    edges,
                    inherited,
                    &mut kept_names,
                    file,
                )?;
            }
        }
        targets.retain(|_, t| t.as_table().is_some_and(|t| !t.is_empty()));
    }
    if manifest
        .get("target")
        .and_then(Value::as_table)
        .is_some_and(Table::is_empty)
    {
        manifest.remove("target");
    }
    if let Some(Value::Table(features)) = manifest.get_mut("features") {
        features.retain(|name, _| enabled.contains::<str>(name));
        let kept_features: BTreeSet<String> = features.keys().cloned().collect();
        for (_, values) in features.iter_mut() {
            if let Value::Array(values) = values {
                values.retain(|v| {
                    v.as_str()
                        .is_none_or(|v| feature_value_is_kept(v, &kept_names, &kept_features))
                });
            }
        }
        if features.is_empty() {
            manifest.remove("features");
        }
    }
    Ok(())
}

fn inherit_package_keys(package: &mut Table, from: Option<&Table>) {
    let inherited: Vec<String> = package
        .iter()
        .filter(|(_, v)| is_inherited(v))
        .map(|(k, _)| k.clone())
        .collect();
    for key in inherited {
        match from.and_then(|f| f.get(&key)) {
            Some(value) => {
                package.insert(key, value.clone());
            }
            // Dropped from [workspace.package] because it cannot change a build.
            None => {
                package.remove(&key);
            }
        }
    }
}

fn is_inherited(value: &Value) -> bool {
    value.get("workspace").and_then(Value::as_bool) == Some(true)
}

fn prune_dependency_tables(
    table: &mut Table,
    platform: Option<&str>,
    keep_all: bool,
    edges: &[Edge<'_>],
    inherited: &Inherited<'_>,
    kept_names: &mut BTreeSet<String>,
    file: &std::path::Path,
) -> Result<()> {
    let dev = DEV_TABLES.map(|t| (t, Kind::Dev));
    let tables = BUILT_TABLES
        .iter()
        .chain(if inherited.resolver_v1 { &dev[..] } else { &[] });
    for &(key, kind) in tables {
        // Resolver 1: every entry of a dev table or another platform's table counts.
        let keep_all = keep_all || kind == Kind::Dev;
        let Some(Value::Table(deps)) = table.get_mut(key) else {
            continue;
        };
        let mut pruned = Table::new();
        for (name, spec) in std::mem::take(deps) {
            let spec = inherit_dependency(&name, spec, inherited, file)?;
            let real = spec
                .get("package")
                .and_then(Value::as_str)
                .unwrap_or(&name)
                .to_owned();
            let candidates: Vec<&Edge<'_>> = edges
                .iter()
                .filter(|e| e.package_name == real && e.dep.has_kind(kind, platform))
                .collect();
            let edge = match candidates.as_slice() {
                [] if keep_all => None,
                [] => continue,
                [one] => Some(*one),
                many => {
                    let extern_name = name.replace('-', "_");
                    let named: Vec<_> = many.iter().filter(|e| e.dep.name == extern_name).collect();
                    (named.len() == 1).then(|| *named[0])
                }
            };
            kept_names.insert(name.clone());
            pruned.insert(name, normalise_dependency(spec, edge));
        }
        if pruned.is_empty() {
            table.remove(key);
        } else {
            table.insert(key.to_owned(), Value::Table(pruned));
        }
    }
    Ok(())
}

/// Moves the plain registry dependencies of target-side members into one holder member, so
/// that which member declares a package stops mattering: a member that starts using a package
/// another member already compiles (same version, features within the union) leaves the key
/// alone. Sound for what the base compiles because resolver 2 unifies a package's features over
/// every target-side dependent of the build: the holder declares the union of the features and
/// default features if any declaration had them, at the one locked version.
///
/// `tables[i]` is eligible when `eligible[i]`: a member compiled for the target only (not a
/// proc-macro, not reached through a build dependency), whose stub sources use nothing. Only
/// `[dependencies]` entries of the form `{ version = "=x", features, default-features }` that
/// no kept `[features]` value names move; a package declared at two versions does not.
pub fn hoist_shared(
    tables: &mut [&mut Table],
    eligible: &[bool],
    holder: usize,
    platform: &Platform,
) {
    struct Declaration {
        member: usize,
        /// `None`: `[dependencies]`; else the `[target.<key>]` table (one that applies).
        location: Option<String>,
        version: String,
        features: BTreeSet<String>,
        default: bool,
    }
    let mut found: BTreeMap<String, Vec<Declaration>> = BTreeMap::new();
    let mut pinned: BTreeSet<String> = BTreeSet::new();
    for (member, table) in tables.iter().enumerate() {
        let named = names_in_features(table);
        // On the image's platform, `[target.<applying>.dependencies]` is `[dependencies]`.
        let mut locations: Vec<(Option<String>, &Table)> = Vec::new();
        if let Some(deps) = table.get("dependencies").and_then(Value::as_table) {
            locations.push((None, deps));
        }
        if let Some(targets) = table.get("target").and_then(Value::as_table) {
            for (key, target) in targets {
                if platform.applies(key) == Some(true)
                    && let Some(deps) = target.get("dependencies").and_then(Value::as_table)
                {
                    locations.push((Some(key.clone()), deps));
                }
            }
        }
        for (location, deps) in locations {
            for (name, spec) in deps {
                let plain = spec.as_table().filter(|spec| {
                    spec.keys()
                        .all(|k| ["version", "features", "default-features"].contains(&k.as_str()))
                        && spec
                            .get("version")
                            .and_then(Value::as_str)
                            .is_some_and(|v| v.starts_with('='))
                });
                match plain {
                    Some(spec) if eligible[member] && !named.contains(name) => {
                        found.entry(name.clone()).or_default().push(Declaration {
                            member,
                            location: location.clone(),
                            version: spec["version"].as_str().unwrap_or_default().to_owned(),
                            features: spec
                                .get("features")
                                .and_then(Value::as_array)
                                .into_iter()
                                .flatten()
                                .filter_map(|f| f.as_str().map(str::to_owned))
                                .collect(),
                            default: spec.get("default-features").and_then(Value::as_bool)
                                != Some(false),
                        });
                    }
                    // The holder keeps its own entry of that name: nothing can move onto it.
                    _ if member == holder => {
                        pinned.insert(name.clone());
                    }
                    _ => {}
                }
            }
        }
    }
    for (name, declarations) in found {
        let version = &declarations[0].version;
        if pinned.contains(&name) || declarations.iter().any(|d| &d.version != version) {
            continue;
        }
        let mut merged = Table::new();
        merged.insert("version".into(), Value::String(version.clone()));
        let features: BTreeSet<&String> = declarations.iter().flat_map(|d| &d.features).collect();
        if !features.is_empty() {
            merged.insert(
                "features".into(),
                Value::Array(features.into_iter().cloned().map(Value::String).collect()),
            );
        }
        if declarations.iter().all(|d| !d.default) {
            merged.insert("default-features".into(), Value::Boolean(false));
        }
        for declaration in &declarations {
            remove_entry(
                tables[declaration.member],
                declaration.location.as_deref(),
                &name,
            );
        }
        let deps = tables[holder]
            .entry("dependencies")
            .or_insert_with(|| Value::Table(Table::new()));
        if let Value::Table(deps) = deps {
            deps.insert(name, Value::Table(merged));
        }
    }
}

/// Removes `name` from `[dependencies]` or `[target.<location>.dependencies]`, and the
/// tables it leaves empty.
fn remove_entry(table: &mut Table, location: Option<&str>, name: &str) {
    let Some(location) = location else {
        if let Some(Value::Table(deps)) = table.get_mut("dependencies") {
            deps.remove(name);
            if deps.is_empty() {
                table.remove("dependencies");
            }
        }
        return;
    };
    let Some(Value::Table(targets)) = table.get_mut("target") else {
        return;
    };
    if let Some(Value::Table(target)) = targets.get_mut(location) {
        if let Some(Value::Table(deps)) = target.get_mut("dependencies") {
            deps.remove(name);
            if deps.is_empty() {
                target.remove("dependencies");
            }
        }
        if target.is_empty() {
            targets.remove(location);
        }
    }
    if targets.is_empty() {
        table.remove("target");
    }
}

/// Dependency names that a manifest's `[features]` values refer to.
fn names_in_features(manifest: &Table) -> BTreeSet<String> {
    let Some(features) = manifest.get("features").and_then(Value::as_table) else {
        return BTreeSet::new();
    };
    features
        .values()
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(Value::as_str)
        .map(|v| {
            let v = v.strip_prefix("dep:").unwrap_or(v);
            v.split('/')
                .next()
                .unwrap_or(v)
                .trim_end_matches('?')
                .to_owned()
        })
        .collect()
}

/// `dep = { workspace = true, features = [...], optional = true }` → the workspace entry with
/// the member's additions, as cargo merges them.
fn inherit_dependency(
    name: &str,
    spec: Value,
    inherited: &Inherited<'_>,
    file: &std::path::Path,
) -> Result<Value> {
    if !is_inherited(&spec) {
        return Ok(spec);
    }
    let Some(base) = inherited.dependencies.and_then(|d| d.get(name)) else {
        bail!(
            "{}: `{name}` has workspace = true, but [workspace.dependencies] has no `{name}`; add it there",
            file.display()
        );
    };
    let mut merged = match base {
        Value::String(req) => {
            Table::from_iter([("version".to_owned(), Value::String(req.clone()))])
        }
        Value::Table(t) => t.clone(),
        _ => bail!(
            "{}: [workspace.dependencies] `{name}` is neither a string nor a table",
            file.display()
        ),
    };
    if let Some(Value::String(path)) = merged.get("path") {
        let up = "../".repeat(inherited.member_depth);
        merged.insert("path".into(), Value::String(format!("{up}{path}")));
    }
    let member = spec.as_table().cloned().unwrap_or_default();
    if let Some(Value::Array(extra)) = member.get("features") {
        let mut features = merged
            .get("features")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        features.extend(extra.iter().cloned());
        merged.insert("features".into(), Value::Array(features));
    }
    if let Some(optional) = member.get("optional") {
        merged.insert("optional".into(), optional.clone());
    }
    Ok(Value::Table(merged))
}

/// One dependency entry in canonical form: a table, features sorted, defaults left out, and a
/// registry requirement pinned to the version the lockfile holds (the base builds `--locked`,
/// so a requirement the locked version satisfies changes nothing it compiles).
fn normalise_dependency(spec: Value, edge: Option<&Edge<'_>>) -> Value {
    let mut table = match spec {
        Value::String(req) => Table::from_iter([("version".to_owned(), Value::String(req))]),
        Value::Table(t) => t,
        other => return other,
    };
    if let Some(value) = table.remove("default_features") {
        table.insert("default-features".into(), value);
    }
    if table.get("default-features").and_then(Value::as_bool) == Some(true) {
        table.remove("default-features");
    }
    if table.get("optional").and_then(Value::as_bool) == Some(false) {
        table.remove("optional");
    }
    if let Some(Value::Array(features)) = table.get("features") {
        let sorted: BTreeSet<String> = features
            .iter()
            .filter_map(|f| f.as_str().map(str::to_owned))
            .collect();
        if sorted.is_empty() {
            table.remove("features");
        } else {
            table.insert(
                "features".into(),
                Value::Array(sorted.into_iter().map(Value::String).collect()),
            );
        }
    }
    let from_source = ["path", "git"].iter().any(|k| table.contains_key(*k));
    if let Some(edge) = edge
        && edge.from_registry
        && !from_source
    {
        table.insert(
            "version".into(),
            Value::String(format!("={}", edge.version)),
        );
    }
    Value::Table(table)
}

/// A `[features]` value stays when what it names is still there: `dep:x`, `x/f`, `x?/f` name a
/// dependency; a bare `x` names a feature or an optional dependency.
fn feature_value_is_kept(
    value: &str,
    deps: &BTreeSet<String>,
    features: &BTreeSet<String>,
) -> bool {
    if let Some(dep) = value.strip_prefix("dep:") {
        return deps.contains(dep);
    }
    if let Some((dep, _)) = value.split_once('/') {
        return deps.contains(dep.trim_end_matches('?'));
    }
    features.contains(value) || deps.contains(value)
}

#[cfg(test)]
mod tests;
