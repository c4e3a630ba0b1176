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
use serde::Deserialize;
use toml::{Table, Value};

/// `cargo metadata --format-version 1` with dependencies: the parts the key needs.
#[derive(Debug, Deserialize)]
pub struct Resolve {
    pub nodes: Vec<Node>,
}

#[derive(Debug, Deserialize)]
pub struct Node {
    pub id: String,
    #[serde(default)]
    pub deps: Vec<NodeDep>,
    #[serde(default)]
    pub features: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct NodeDep {
    pub name: String,
    pub pkg: String,
    #[serde(default)]
    pub dep_kinds: Vec<DepKind>,
}

#[derive(Debug, Deserialize)]
pub struct DepKind {
    pub kind: Option<String>,
}

impl NodeDep {
    /// Whether `cargo build` of the dependent compiles this edge (normal or build, not dev).
    pub fn is_built(&self) -> bool {
        self.dep_kinds
            .iter()
            .any(|k| k.kind.as_deref() != Some("dev"))
    }

    fn has_kind(&self, kind: Kind) -> bool {
        self.dep_kinds.iter().any(|k| match kind {
            Kind::Normal => k.kind.is_none(),
            Kind::Build => k.kind.as_deref() == Some("build"),
        })
    }
}

/// The package ids reachable from `roots` through normal and build edges.
pub fn closure(resolve: &Resolve, roots: &[&str]) -> BTreeSet<String> {
    let nodes: BTreeMap<&str, &Node> = resolve.nodes.iter().map(|n| (n.id.as_str(), n)).collect();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut queue: VecDeque<&str> = roots.iter().copied().collect();
    while let Some(id) = queue.pop_front() {
        if !seen.insert(id.to_owned()) {
            continue;
        }
        if let Some(node) = nodes.get(id) {
            for dep in node.deps.iter().filter(|d| d.is_built()) {
                queue.push_back(&dep.pkg);
            }
        }
    }
    seen
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Normal,
    Build,
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
    for table in DEV_TABLES.into_iter().chain(UNBUILT_TARGETS) {
        manifest.remove(table);
    }
    let mut kept_names = BTreeSet::new();
    prune_dependency_tables(manifest, edges, inherited, &mut kept_names, file)?;
    if let Some(Value::Table(targets)) = manifest.get_mut("target") {
        for (_, platform) in targets.iter_mut() {
            if let Value::Table(platform) = platform {
                for table in DEV_TABLES {
                    platform.remove(table);
                }
                prune_dependency_tables(platform, edges, inherited, &mut kept_names, file)?;
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
        features.retain(|name, _| enabled.contains(&name[..]));
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
    edges: &[Edge<'_>],
    inherited: &Inherited<'_>,
    kept_names: &mut BTreeSet<String>,
    file: &std::path::Path,
) -> Result<()> {
    for (key, kind) in BUILT_TABLES {
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
                .filter(|e| e.package_name == real && e.dep.has_kind(kind))
                .collect();
            let edge = match candidates.as_slice() {
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
mod tests {
    use super::*;

    fn dep(name: &str, kind: Option<&str>) -> NodeDep {
        NodeDep {
            name: name.replace('-', "_"),
            pkg: format!("registry#{name}@1.0.0"),
            dep_kinds: vec![DepKind {
                kind: kind.map(str::to_owned),
            }],
        }
    }

    #[test]
    fn pruning_keeps_only_resolved_built_dependencies_and_enabled_features() {
        let manifest = r#"
[package]
name = "app"
edition = { workspace = true }
[dependencies]
itoa = "1.0.5"
unused-opt = { version = "1", optional = true }
[target.'cfg(windows)'.dependencies]
winapi = "0.3"
[dev-dependencies]
memchr = "2"
[features]
default = ["fast"]
fast = ["itoa/std", "unused-opt?/x", "winapi/y"]
never = ["dep:unused-opt"]
[[test]]
name = "it"
"#;
        let mut table: Table = toml::from_str(manifest).unwrap();
        let itoa = dep("itoa", None);
        let memchr = dep("memchr", Some("dev"));
        let edges = [
            Edge {
                dep: &itoa,
                package_name: "itoa",
                version: "1.0.19",
                from_registry: true,
            },
            Edge {
                dep: &memchr,
                package_name: "memchr",
                version: "2.7.0",
                from_registry: true,
            },
        ];
        let ws_package: Table = toml::from_str("edition = \"2024\"").unwrap();
        let inherited = Inherited {
            package: Some(&ws_package),
            dependencies: None,
            member_depth: 1,
        };
        let enabled: BTreeSet<&str> = ["default", "fast"].into();
        prune_member(
            &mut table,
            &edges,
            &enabled,
            &inherited,
            std::path::Path::new("x"),
        )
        .unwrap();
        let expected: Table = toml::from_str(
            r#"
[package]
name = "app"
edition = "2024"
[dependencies]
itoa = { version = "=1.0.19" }
[features]
default = ["fast"]
fast = ["itoa/std"]
"#,
        )
        .unwrap();
        assert_eq!(table, expected);
    }

    #[test]
    fn closure_follows_normal_and_build_edges_only() {
        let node = |id: &str, deps: Vec<NodeDep>| Node {
            id: id.to_owned(),
            deps,
            features: vec![],
        };
        let mut a = dep("b", None);
        a.pkg = "b".into();
        let mut d = dep("d", Some("dev"));
        d.pkg = "d".into();
        let mut c = dep("c", Some("build"));
        c.pkg = "c".into();
        let resolve = Resolve {
            nodes: vec![
                node("a", vec![a, d]),
                node("b", vec![c]),
                node("c", vec![]),
                node("d", vec![]),
            ],
        };
        let found = closure(&resolve, &["a"]);
        assert_eq!(
            found,
            ["a", "b", "c"].into_iter().map(str::to_owned).collect()
        );
    }
}
