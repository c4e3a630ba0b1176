//! `cargo lab bench base --precision`: the base key against cargo's own answer over a
//! generated commit history. A workspace of five members with real crates.io dependencies goes
//! through commits that mix real dependency bumps to published versions, feature changes,
//! dev-dependency and platform-specific additions, profile edits and each no-op cause of the
//! docs/base-image.md, in proportions like a real repository's. After each commit, four keys are taken:
//! - the oracle: the external packages' units of `cargo build --release --unit-graph` (stable
//!   cargo with RUSTC_BOOTSTRAP=1; compiles nothing; only ever run here, never by the product);
//! - ours (`base::compute_uncached`);
//! - docker's layer key over COPYed manifests (every Cargo.toml and Cargo.lock, byte for byte);
//! - cargo-chef's recipe (`cargo chef prepare`), when cargo-chef can be installed.
//!
//! A false rebuild is a key change without an oracle change; a missed one is the reverse.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use toml::{Table, Value};

use xtask_core::{files::hex, process, progress, workspace::Workspace};
use xtask_images::base;

/// The members: `app` is the app package; `core` and `web` are in its closure; `tools` is
/// outside it (like xtask); `testkit` is only a dev-dependency (like openeu-testdb).
const MEMBERS: [&str; 5] = ["app", "core", "web", "tools", "testkit"];
const CLOSURE: [&str; 3] = ["app", "core", "web"];

/// Crates with no required dependencies, so the history resolves quickly, and features that
/// exist on every version used.
const POOL: [(&str, &str, &[&str]); 12] = [
    ("itoa", "1.0.1", &[]),
    ("memchr", "2.5.0", &["std"]),
    ("smallvec", "1.10.0", &["union", "const_generics"]),
    ("log", "0.4.17", &["std"]),
    ("bytes", "1.4.0", &["std"]),
    ("base64", "0.21.0", &["std"]),
    ("hex", "0.4.2", &["std"]),
    ("either", "1.8.0", &["use_std"]),
    ("fnv", "1.0.6", &["std"]),
    ("anyhow", "1.0.70", &["std"]),
    ("ryu", "1.0.12", &[]),
    ("bitflags", "2.0.0", &["std"]),
];

/// A commit's kind, its weight in the history, and whether it is one of the no-op causes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Comment,
    MemberVersion,
    LockBump,
    ReqRaiseToLocked,
    ReqBumpNew,
    DevDepAdd,
    DevDepChange,
    FeatureAdd,
    OptionalUnused,
    PlatformOther,
    PlatformOwn,
    ProfileCustom,
    ProfileRelease,
    ProfileDev,
    RustVersion,
    Inheritance,
    UnusedFeature,
    ShareDep,
    ToolsDep,
    NewDep,
    RemoveDep,
}

const WEIGHTS: [(Op, u32); 21] = [
    (Op::Comment, 6),
    (Op::MemberVersion, 5),
    (Op::LockBump, 14),
    (Op::ReqRaiseToLocked, 5),
    (Op::ReqBumpNew, 4),
    (Op::DevDepAdd, 7),
    (Op::DevDepChange, 4),
    (Op::FeatureAdd, 5),
    (Op::OptionalUnused, 4),
    (Op::PlatformOther, 5),
    (Op::PlatformOwn, 2),
    (Op::ProfileCustom, 4),
    (Op::ProfileRelease, 2),
    (Op::ProfileDev, 3),
    (Op::RustVersion, 3),
    (Op::Inheritance, 3),
    (Op::UnusedFeature, 4),
    (Op::ShareDep, 5),
    (Op::ToolsDep, 6),
    (Op::NewDep, 4),
    (Op::RemoveDep, 2),
];

/// Counts of one approach over the history.
#[derive(Default, Debug, Clone, Copy)]
pub struct Score {
    pub rebuilds: usize,
    pub false_rebuilds: usize,
    pub missed: usize,
}

impl Score {
    fn add(&mut self, changed: bool, oracle: bool) {
        self.rebuilds += usize::from(changed);
        self.false_rebuilds += usize::from(changed && !oracle);
        self.missed += usize::from(!changed && oracle);
    }
}

pub struct Outcome {
    pub commits: usize,
    pub oracle_rebuilds: usize,
    pub ours: Score,
    pub copy: Score,
    pub chef: Option<Score>,
    pub per_op: BTreeMap<String, (usize, usize, usize, usize)>,
}

/// A small deterministic generator: the history is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Runs the history in `dir` and scores the three keys. `open` opens a workspace handle the
/// way the bench does (its toolchain, its registry); `chef` is the cargo-chef binary, if any.
pub fn run(
    dir: &Path,
    commits: usize,
    toolchain: &str,
    chef: Option<&Path>,
    open: &dyn Fn(&Path) -> Result<Workspace>,
) -> Result<Outcome> {
    generate(dir, toolchain)?;
    let mut history = History {
        dir: dir.to_path_buf(),
        toolchain: toolchain.to_owned(),
        rng: Rng(0x5eed_0009),
        versions: BTreeMap::new(),
        counter: 0,
    };
    history.update()?;
    let keys = |h: &History| -> Result<[Option<String>; 4]> {
        let ours = base::compute_uncached(&open(&h.dir)?)?.hash;
        Ok([
            Some(h.oracle()?),
            Some(ours),
            Some(h.copy_key()?),
            chef.map(|c| h.chef_key(c)).transpose()?,
        ])
    };
    let mut previous = keys(&history)?;
    let mut outcome = Outcome {
        commits: 0,
        oracle_rebuilds: 0,
        ours: Score::default(),
        copy: Score::default(),
        chef: chef.map(|_| Score::default()),
        per_op: BTreeMap::new(),
    };
    let step = progress::step(format!("precision: {commits} generated commits"));
    for i in 0..commits {
        let op = history.choose();
        let applied = history.apply(op)?;
        history.update()?;
        let current = keys(&history)?;
        let changed = |k: usize| current[k] != previous[k];
        let oracle = changed(0);
        outcome.commits += 1;
        outcome.oracle_rebuilds += usize::from(oracle);
        outcome.ours.add(changed(1), oracle);
        outcome.copy.add(changed(2), oracle);
        if let Some(score) = outcome.chef.as_mut() {
            score.add(changed(3), oracle);
        }
        let entry = outcome.per_op.entry(format!("{applied:?}")).or_default();
        entry.0 += 1;
        entry.1 += usize::from(oracle);
        entry.2 += usize::from(changed(1));
        entry.3 += usize::from(chef.is_some() && changed(3));
        if changed(1) != oracle {
            progress::note(format!(
                "commit {i} {applied:?}: oracle {oracle}, ours {}",
                changed(1)
            ));
        }
        previous = current;
    }
    step.done();
    Ok(outcome)
}

struct History {
    dir: PathBuf,
    toolchain: String,
    rng: Rng,
    /// Published versions per crate, from cargo's index cache, oldest first.
    versions: BTreeMap<String, Vec<String>>,
    counter: usize,
}

impl History {
    fn choose(&mut self) -> Op {
        let total: u32 = WEIGHTS.iter().map(|(_, w)| w).sum();
        let mut n = (self.rng.next() % u64::from(total)) as u32;
        for (op, weight) in WEIGHTS {
            if n < weight {
                return op;
            }
            n -= weight;
        }
        Op::Comment
    }

    fn cargo(&self) -> std::process::Command {
        let mut cmd = process::command("cargo");
        cmd.current_dir(&self.dir)
            .env("RUSTUP_TOOLCHAIN", &self.toolchain)
            .env_remove("CARGO_TARGET_DIR");
        cmd
    }

    fn run_cargo(&self, args: &[&str]) -> Result<Vec<u8>> {
        let out = self.cargo().args(args).output().context("running cargo")?;
        if !out.status.success() {
            bail!(
                "cargo {args:?} in {} failed:\n{}",
                self.dir.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(out.stdout)
    }

    /// What a developer's next cargo command does to the lockfile after an edit.
    fn update(&self) -> Result<()> {
        self.run_cargo(&["update", "--workspace", "--quiet"])
            .map(|_| ())
    }

    fn manifest(&self, member: &str) -> PathBuf {
        if member.is_empty() {
            self.dir.join("Cargo.toml")
        } else {
            self.dir.join(member).join("Cargo.toml")
        }
    }

    fn read(&self, member: &str) -> Result<Table> {
        let path = self.manifest(member);
        let text = std::fs::read_to_string(&path)?;
        toml::from_str(&text).with_context(|| format!("{}", path.display()))
    }

    fn write(&self, member: &str, table: &Table) -> Result<()> {
        std::fs::write(self.manifest(member), toml::to_string(table)?)?;
        Ok(())
    }

    fn locked(&self) -> Result<BTreeMap<String, String>> {
        let text = std::fs::read_to_string(self.dir.join("Cargo.lock"))?;
        let lock: Table = toml::from_str(&text)?;
        Ok(lock
            .get("package")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|p| p.get("source").is_some())
            .filter_map(|p| {
                Some((
                    p.get("name")?.as_str()?.to_owned(),
                    p.get("version")?.as_str()?.to_owned(),
                ))
            })
            .collect())
    }

    /// Published, unyanked, non-prerelease versions of `name`, from cargo's index cache.
    fn published(&mut self, name: &str) -> Vec<String> {
        if let Some(v) = self.versions.get(name) {
            return v.clone();
        }
        let found = index_versions(name).unwrap_or_default();
        self.versions.insert(name.to_owned(), found.clone());
        found
    }

    /// Applies one commit of kind `op`; returns the kind applied (a fallback when `op` cannot
    /// apply in the current state).
    fn apply(&mut self, op: Op) -> Result<Op> {
        self.counter += 1;
        let n = self.counter;
        let member = *self.rng.pick(&CLOSURE);
        let mut table = self.read(member)?;
        let pool_entry = *self.rng.pick(&POOL);
        let (krate, _, features) = pool_entry;
        let deps_table = |t: &mut Table, key: &str| -> Table {
            t.get(key)
                .and_then(Value::as_table)
                .cloned()
                .unwrap_or_default()
        };
        match op {
            Op::Comment => {
                let path = self.manifest(member);
                let text = std::fs::read_to_string(&path)?;
                std::fs::write(&path, format!("# note {n}\n{text}"))?;
            }
            Op::MemberVersion => {
                if let Some(Value::Table(p)) = table.get_mut("package") {
                    p.insert("version".into(), Value::String(format!("0.{n}.0")));
                }
                self.write(member, &table)?;
            }
            Op::LockBump => {
                let locked = self.locked()?;
                let names: Vec<&String> = locked.keys().collect();
                if names.is_empty() {
                    return self.apply(Op::Comment);
                }
                let name = (*self.rng.pick(&names)).clone();
                let current = locked[&name].clone();
                let published = self.published(&name);
                let Some(next) = next_compatible(&published, &current) else {
                    return self.apply(Op::Comment);
                };
                let spec = format!("{name}@{current}");
                if self
                    .run_cargo(&["update", "-p", &spec, "--precise", &next, "--quiet"])
                    .is_err()
                {
                    return self.apply(Op::Comment);
                }
            }
            Op::ReqRaiseToLocked | Op::ReqBumpNew => {
                let mut deps = deps_table(&mut table, "dependencies");
                let locked = self.locked()?;
                let candidates: Vec<String> = deps
                    .iter()
                    .filter(|(k, v)| v.is_str() && locked.contains_key(*k))
                    .map(|(k, _)| k.clone())
                    .collect();
                if candidates.is_empty() {
                    return self.apply(Op::NewDep);
                }
                let name = self.rng.pick(&candidates).clone();
                let target = if op == Op::ReqRaiseToLocked {
                    Some(locked[&name].clone())
                } else {
                    let published = self.published(&name);
                    next_compatible(&published, &locked[&name])
                };
                let Some(target) = target else {
                    return self.apply(Op::Comment);
                };
                deps.insert(name, Value::String(target));
                table.insert("dependencies".into(), Value::Table(deps));
                self.write(member, &table)?;
            }
            Op::DevDepAdd | Op::DevDepChange => {
                let mut deps = deps_table(&mut table, "dev-dependencies");
                let spec = match (op, features.first()) {
                    (Op::DevDepChange, Some(feature)) => {
                        let mut t = Table::new();
                        t.insert("version".into(), Value::String(pool_entry.1.to_owned()));
                        t.insert(
                            "features".into(),
                            Value::Array(vec![Value::String((*feature).to_owned())]),
                        );
                        Value::Table(t)
                    }
                    _ => Value::String(pool_entry.1.to_owned()),
                };
                deps.insert(krate.to_owned(), spec);
                if n.is_multiple_of(3) {
                    let mut t = Table::new();
                    t.insert("path".into(), Value::String("../testkit".into()));
                    deps.insert("testkit".into(), Value::Table(t));
                }
                table.insert("dev-dependencies".into(), Value::Table(deps));
                self.write(member, &table)?;
            }
            Op::FeatureAdd => {
                let mut deps = deps_table(&mut table, "dependencies");
                let existing: Vec<String> = deps
                    .keys()
                    .filter(|k| POOL.iter().any(|(p, _, f)| p == k && !f.is_empty()))
                    .cloned()
                    .collect();
                if existing.is_empty() {
                    return self.apply(Op::NewDep);
                }
                let name = self.rng.pick(&existing).clone();
                let feature = POOL
                    .iter()
                    .find(|(p, _, _)| *p == name)
                    .map(|(_, _, f)| f[0])
                    .unwrap_or("std");
                let mut spec = match deps.get(&name) {
                    Some(Value::String(v)) => {
                        Table::from_iter([("version".to_owned(), Value::String(v.clone()))])
                    }
                    Some(Value::Table(t)) => t.clone(),
                    _ => return self.apply(Op::Comment),
                };
                if spec.contains_key("workspace") || spec.contains_key("path") {
                    return self.apply(Op::Comment);
                }
                let toggled = spec.get("default-features").and_then(Value::as_bool) == Some(false);
                if toggled {
                    spec.remove("default-features");
                } else {
                    spec.insert("default-features".into(), Value::Boolean(false));
                    spec.insert(
                        "features".into(),
                        Value::Array(vec![Value::String(feature.to_owned())]),
                    );
                }
                deps.insert(name, Value::Table(spec));
                table.insert("dependencies".into(), Value::Table(deps));
                self.write(member, &table)?;
            }
            Op::OptionalUnused | Op::UnusedFeature => {
                let mut features_table = deps_table(&mut table, "features");
                if op == Op::OptionalUnused {
                    let mut deps = deps_table(&mut table, "dependencies");
                    if deps.contains_key(krate) {
                        return self.apply(Op::Comment);
                    }
                    let mut t = Table::new();
                    t.insert("version".into(), Value::String(pool_entry.1.to_owned()));
                    t.insert("optional".into(), Value::Boolean(true));
                    deps.insert(krate.to_owned(), Value::Table(t));
                    table.insert("dependencies".into(), Value::Table(deps));
                    features_table.insert(
                        format!("extra-{n}"),
                        Value::Array(vec![Value::String(format!("dep:{krate}"))]),
                    );
                } else {
                    let deps = deps_table(&mut table, "dependencies");
                    let named: Vec<String> = deps
                        .iter()
                        .filter(|(k, v)| {
                            v.get("optional").is_none()
                                && POOL.iter().any(|(p, _, f)| p == k && !f.is_empty())
                        })
                        .map(|(k, _)| k.clone())
                        .collect();
                    let value = match named.first() {
                        Some(dep) => {
                            let feature = POOL
                                .iter()
                                .find(|(p, _, _)| p == dep)
                                .map_or("std", |(_, _, f)| f[0]);
                            vec![Value::String(format!("{dep}/{feature}"))]
                        }
                        None => Vec::new(),
                    };
                    features_table.insert(format!("unused-{n}"), Value::Array(value));
                }
                table.insert("features".into(), Value::Table(features_table));
                self.write(member, &table)?;
            }
            Op::PlatformOther | Op::PlatformOwn => {
                let platform = if op == Op::PlatformOwn {
                    "cfg(unix)"
                } else {
                    *self.rng.pick(&[
                        "cfg(windows)",
                        "cfg(target_arch = \"wasm32\")",
                        "cfg(target_env = \"musl\")",
                    ])
                };
                let mut targets = deps_table(&mut table, "target");
                let mut entry = targets
                    .get(platform)
                    .and_then(Value::as_table)
                    .cloned()
                    .unwrap_or_default();
                let mut deps = entry
                    .get("dependencies")
                    .and_then(Value::as_table)
                    .cloned()
                    .unwrap_or_default();
                deps.insert(krate.to_owned(), Value::String(pool_entry.1.to_owned()));
                entry.insert("dependencies".into(), Value::Table(deps));
                targets.insert(platform.to_owned(), Value::Table(entry));
                table.insert("target".into(), Value::Table(targets));
                self.write(member, &table)?;
            }
            Op::ProfileCustom | Op::ProfileRelease | Op::ProfileDev | Op::RustVersion => {
                let mut root = self.read("")?;
                match op {
                    Op::RustVersion => {
                        if let Some(Value::Table(ws)) = root.get_mut("workspace")
                            && let Some(Value::Table(p)) = ws.get_mut("package")
                        {
                            p.insert(
                                "rust-version".into(),
                                Value::String(format!("1.{}", 70 + n % 15)),
                            );
                        }
                    }
                    _ => {
                        let mut profiles = deps_table(&mut root, "profile");
                        let (name, key, value) = match op {
                            Op::ProfileCustom => (
                                format!("custom-{}", n % 3),
                                "opt-level",
                                Value::Integer((n % 4) as i64),
                            ),
                            Op::ProfileRelease => (
                                "release".to_owned(),
                                "codegen-units",
                                Value::Integer(1 + (n % 16) as i64),
                            ),
                            _ => (
                                "dev".to_owned(),
                                "opt-level",
                                Value::Integer((n % 3) as i64),
                            ),
                        };
                        let mut profile = profiles
                            .get(&name)
                            .and_then(Value::as_table)
                            .cloned()
                            .unwrap_or_default();
                        if op == Op::ProfileCustom {
                            profile.insert("inherits".into(), Value::String("release".into()));
                        }
                        profile.insert(key.into(), value);
                        profiles.insert(name, Value::Table(profile));
                        root.insert("profile".into(), Value::Table(profiles));
                    }
                }
                self.write("", &root)?;
            }
            Op::Inheritance => {
                let mut deps = deps_table(&mut table, "dependencies");
                let plain: Vec<(String, String)> = deps
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect();
                if plain.is_empty() {
                    return self.apply(Op::Comment);
                }
                let (name, req) = self.rng.pick(&plain).clone();
                let mut root = self.read("")?;
                if let Some(Value::Table(ws)) = root.get_mut("workspace") {
                    let mut shared = ws
                        .get("dependencies")
                        .and_then(Value::as_table)
                        .cloned()
                        .unwrap_or_default();
                    if shared.get(&name).is_some_and(|v| v.as_str() != Some(&req)) {
                        return self.apply(Op::Comment);
                    }
                    shared.insert(name.clone(), Value::String(req));
                    ws.insert("dependencies".into(), Value::Table(shared));
                }
                let mut t = Table::new();
                t.insert("workspace".into(), Value::Boolean(true));
                deps.insert(name, Value::Table(t));
                table.insert("dependencies".into(), Value::Table(deps));
                self.write("", &root)?;
                self.write(member, &table)?;
            }
            Op::ShareDep => {
                // A closure member starts using a package another closure member declares,
                // with the same requirement and features.
                let others: Vec<&str> = CLOSURE.iter().copied().filter(|m| *m != member).collect();
                let other = *self.rng.pick(&others);
                let other_deps = deps_table(&mut self.read(other)?, "dependencies");
                let mut deps = deps_table(&mut table, "dependencies");
                let shareable: Vec<(String, Value)> = other_deps
                    .iter()
                    .filter(|(k, v)| {
                        !deps.contains_key(*k)
                            && v.get("path").is_none()
                            && v.get("optional").is_none()
                            && v.get("workspace").is_none()
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if shareable.is_empty() {
                    return self.apply(Op::Comment);
                }
                let (name, spec) = self.rng.pick(&shareable).clone();
                deps.insert(name, spec);
                table.insert("dependencies".into(), Value::Table(deps));
                self.write(member, &table)?;
            }
            Op::ToolsDep => {
                let mut tools = self.read("tools")?;
                let mut deps = deps_table(&mut tools, "dependencies");
                deps.insert(krate.to_owned(), Value::String(pool_entry.1.to_owned()));
                tools.insert("dependencies".into(), Value::Table(deps));
                self.write("tools", &tools)?;
            }
            Op::NewDep => {
                let mut deps = deps_table(&mut table, "dependencies");
                if deps.contains_key(krate) {
                    return self.apply(Op::Comment);
                }
                deps.insert(krate.to_owned(), Value::String(pool_entry.1.to_owned()));
                table.insert("dependencies".into(), Value::Table(deps));
                self.write(member, &table)?;
            }
            Op::RemoveDep => {
                let mut deps = deps_table(&mut table, "dependencies");
                let removable: Vec<String> = deps
                    .iter()
                    .filter(|(_, v)| v.get("path").is_none())
                    .map(|(k, _)| k.clone())
                    .collect();
                let features = deps_table(&mut table, "features");
                let named = |k: &str| {
                    features
                        .values()
                        .filter_map(Value::as_array)
                        .flatten()
                        .filter_map(Value::as_str)
                        .any(|v| v.contains(k))
                };
                let removable: Vec<&String> = removable.iter().filter(|k| !named(k)).collect();
                if removable.is_empty() {
                    return self.apply(Op::NewDep);
                }
                let name = (*self.rng.pick(&removable)).clone();
                deps.remove(&name);
                table.insert("dependencies".into(), Value::Table(deps));
                self.write(member, &table)?;
            }
        }
        Ok(op)
    }

    /// The oracle: cargo's unit graph of the release build of `app`, external units only.
    fn oracle(&self) -> Result<String> {
        let json = {
            let mut cmd = self.cargo();
            cmd.env("RUSTC_BOOTSTRAP", "1").args([
                "build",
                "--release",
                "--locked",
                "--package",
                "app",
                "--unit-graph",
                "-Z",
                "unstable-options",
            ]);
            let out = cmd.output().context("running cargo --unit-graph")?;
            if !out.status.success() {
                bail!(
                    "cargo build --unit-graph failed:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            out.stdout
        };
        let graph: UnitGraph = serde_json::from_slice(&json).context("parsing the unit graph")?;
        let mut signatures: BTreeSet<String> = BTreeSet::new();
        for unit in &graph.units {
            if unit.pkg_id.starts_with("path+") {
                continue;
            }
            let deps: BTreeSet<String> = unit
                .dependencies
                .iter()
                .filter_map(|d| {
                    let dep = graph.units.get(d.index)?;
                    Some(format!(
                        "{} {} {} {}",
                        dep.pkg_id, dep.target["name"], dep.mode, d.extern_crate_name
                    ))
                })
                .collect();
            signatures.insert(serde_json::to_string(&Signature {
                deps,
                features: &unit.features,
                mode: &unit.mode,
                pkg: &unit.pkg_id,
                platform: unit.platform.as_deref(),
                profile: &unit.profile,
                target: &unit.target,
            })?);
        }
        let mut hasher = Sha256::new();
        for s in &signatures {
            hasher.update(s.as_bytes());
            hasher.update(b"\n");
        }
        Ok(hex(&hasher.finalize()))
    }

    /// Docker's layer key for `COPY **/Cargo.toml Cargo.lock`: the bytes of those files.
    fn copy_key(&self) -> Result<String> {
        let mut hasher = Sha256::new();
        for member in std::iter::once("").chain(MEMBERS) {
            hasher.update(std::fs::read(self.manifest(member))?);
        }
        hasher.update(std::fs::read(self.dir.join("Cargo.lock"))?);
        Ok(hex(&hasher.finalize()))
    }

    /// cargo-chef's key: its recipe, which its `cook` layer is cached on.
    fn chef_key(&self, chef: &Path) -> Result<String> {
        let recipe = self.dir.join("target/recipe.json");
        std::fs::create_dir_all(self.dir.join("target"))?;
        let out = process::command(chef)
            .current_dir(&self.dir)
            .env("RUSTUP_TOOLCHAIN", &self.toolchain)
            .args(["chef", "prepare", "--recipe-path"])
            .arg(&recipe)
            .output()
            .context("running cargo-chef")?;
        if !out.status.success() {
            bail!(
                "cargo chef prepare failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(hex(&Sha256::digest(std::fs::read(&recipe)?)))
    }
}

/// What identifies a compiled unit, by name (the keys in alphabetical order, as the signatures
/// have always been written).
#[derive(serde::Serialize)]
struct Signature<'a> {
    deps: BTreeSet<String>,
    features: &'a [String],
    mode: &'a str,
    pkg: &'a str,
    platform: Option<&'a str>,
    profile: &'a serde_json::Value,
    target: &'a serde_json::Value,
}

// `cargo build --unit-graph` adds keys over time: the ones not read here are ignored.
#[derive(serde::Deserialize)]
struct UnitGraph {
    units: Vec<Unit>,
}

#[derive(serde::Deserialize)]
struct Unit {
    pkg_id: String,
    target: serde_json::Value,
    profile: serde_json::Value,
    platform: Option<String>,
    mode: String,
    features: Vec<String>,
    dependencies: Vec<UnitDep>,
}

#[derive(serde::Deserialize)]
struct UnitDep {
    index: usize,
    extern_crate_name: String,
}

/// The next published version after `current` with the same compatibility (caret) range.
fn next_compatible(published: &[String], current: &str) -> Option<String> {
    let parse = |v: &str| -> Option<(u64, u64, u64)> {
        let mut parts = v.split('.').map(|p| p.parse::<u64>().ok());
        Some((parts.next()??, parts.next()??, parts.next()??))
    };
    let now = parse(current)?;
    let compatible = |v: (u64, u64, u64)| {
        if now.0 > 0 {
            v.0 == now.0
        } else {
            v.0 == 0 && v.1 == now.1
        }
    };
    published
        .iter()
        .filter_map(|v| Some((parse(v)?, v)))
        .filter(|(v, _)| *v > now && compatible(*v))
        .min_by_key(|(v, _)| *v)
        .map(|(_, s)| s.clone())
}

/// Versions of `name` in cargo's sparse-index cache (filled by any resolution that asked).
fn index_versions(name: &str) -> Option<Vec<String>> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let lower = name.to_lowercase();
    let relative = match lower.len() {
        1 => format!("1/{lower}"),
        2 => format!("2/{lower}"),
        3 => format!("3/{}/{lower}", &lower[..1]),
        _ => format!("{}/{}/{lower}", &lower[..2], &lower[2..4]),
    };
    let mut versions = Vec::new();
    for entry in std::fs::read_dir(home.join("registry/index")).ok()? {
        let path = entry.ok()?.path().join(".cache").join(&relative);
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        for chunk in bytes.split(|b| *b == 0) {
            if chunk.first() != Some(&b'{') {
                continue;
            }
            let Ok(entry) = serde_json::from_slice::<serde_json::Value>(chunk) else {
                continue;
            };
            if let Some(vers) = entry["vers"].as_str()
                && entry["yanked"] != true
                && !vers.contains('-')
            {
                versions.push(vers.to_owned());
            }
        }
    }
    versions.sort();
    versions.dedup();
    Some(versions)
}

/// The starting workspace: five members, each closure member with three pool crates at old
/// versions, so that the history has published versions to bump to.
fn generate(dir: &Path, toolchain: &str) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("Cargo.toml"),
        "[workspace]\nresolver = \"2\"\nmembers = [\"app\", \"core\", \"web\", \"tools\", \"testkit\"]\n\n[workspace.package]\nedition = \"2021\"\n\n[workspace.metadata.xtask]\nregistry = \"127.0.0.1:5000\"\nbase-image = \"precision-base\"\napp-image = \"precision-app\"\napp-packages = [\"app\"]\n\n[profile.release]\nopt-level = 3\n",
    )?;
    std::fs::write(
        dir.join("rust-toolchain.toml"),
        format!("[toolchain]\nchannel = \"{toolchain}\"\n"),
    )?;
    std::fs::write(dir.join("Dockerfile.base"), "FROM scratch\n")?;
    let deps: BTreeMap<&str, Vec<usize>> = [
        ("app", vec![0, 3]),
        ("core", vec![1, 2, 4]),
        ("web", vec![5, 6, 7]),
        ("tools", vec![8, 9]),
        ("testkit", vec![10]),
    ]
    .into();
    for member in MEMBERS {
        let (kind, file) = if member == "app" || member == "tools" {
            ("bin", "src/main.rs")
        } else {
            ("lib", "src/lib.rs")
        };
        let mut text = format!(
            "[package]\nname = \"{member}\"\nversion = \"0.1.0\"\nedition.workspace = true\n\n[dependencies]\n"
        );
        for i in &deps[member] {
            let (name, version, _) = POOL[*i];
            text.push_str(&format!("{name} = \"{version}\"\n"));
        }
        if member == "app" {
            text.push_str("core = { path = \"../core\" }\nweb = { path = \"../web\" }\n");
        }
        std::fs::create_dir_all(dir.join(member).join("src"))?;
        std::fs::write(dir.join(member).join("Cargo.toml"), text)?;
        std::fs::write(
            dir.join(member).join(file),
            if kind == "bin" { "fn main() {}\n" } else { "" },
        )?;
    }
    // The lock starts at the pool's old versions, so that bumps have somewhere to go.
    let out = process::command("cargo")
        .current_dir(dir)
        .env("RUSTUP_TOOLCHAIN", toolchain)
        .env_remove("CARGO_TARGET_DIR")
        .args(["generate-lockfile", "--quiet"])
        .output()?;
    if !out.status.success() {
        bail!(
            "cargo generate-lockfile in {} failed:\n{}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for (name, version, _) in POOL {
        let _ = process::command("cargo")
            .current_dir(dir)
            .env("RUSTUP_TOOLCHAIN", toolchain)
            .env_remove("CARGO_TARGET_DIR")
            .args(["update", "-p", name, "--precise", version, "--quiet"])
            .output();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_compatible_stays_in_the_caret_range() {
        let published: Vec<String> = [
            "0.4.1", "0.4.2", "0.5.0", "1.0.0", "1.0.3", "1.2.0", "2.0.0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            next_compatible(&published, "0.4.1").as_deref(),
            Some("0.4.2")
        );
        assert_eq!(next_compatible(&published, "0.4.2"), None);
        assert_eq!(
            next_compatible(&published, "1.0.0").as_deref(),
            Some("1.0.3")
        );
        assert_eq!(next_compatible(&published, "1.2.0"), None);
    }
}
