//! Manifests, lockfile and cargo configuration as the base key reads them: comments and
//! formatting gone, keys that compile nothing differently dropped, member versions masked,
//! paths made lexical, and only the built profile kept. Pure functions over text and TOML
//! tables, unit-tested row by row against the edit table.

use super::*;

/// Keys of `[package]` (and `[workspace.package]`) that cannot affect compiled dependencies.
pub(super) const DROPPED_PACKAGE_KEYS: [&str; 15] = [
    "description",
    // The lockfile holds the resolution; the pinned toolchain is hashed on its own.
    "rust-version",
    "authors",
    "readme",
    "repository",
    "keywords",
    "categories",
    "documentation",
    "homepage",
    "license",
    "license-file",
    "metadata",
    "publish",
    "include",
    "exclude",
];
/// Top-level manifest tables that cannot affect compiled dependencies.
pub(super) const DROPPED_TABLES: [&str; 2] = ["lints", "badges"];
pub(super) const DEPENDENCY_TABLES: [&str; 5] = [
    "dependencies",
    "dev-dependencies",
    "build-dependencies",
    "dev_dependencies",
    "build_dependencies",
];
/// The version every workspace member gets in the base context.
pub(super) const MASKED_VERSION: &str = "0.0.0";

/// How manifests are normalised: which path dependencies are members, where the workspace ends.
pub struct ManifestRules<'a> {
    pub root: &'a Path,
    pub member_dirs: &'a BTreeSet<PathBuf>,
}

impl ManifestRules<'_> {
    /// The canonical form of one manifest: parsed (comments and formatting gone), keys sorted,
    /// descriptive keys dropped, member versions masked.
    /// Returns the canonical text and the normalised table it was written from.
    pub fn normalise(&self, text: &str, file: &Path, is_member: bool) -> Result<(String, Table)> {
        let mut manifest: Table = toml::from_str(text).map_err(|err| {
            anyhow::anyhow!(
                "{}: malformed manifest: {}",
                file.display(),
                err.to_string().trim_end()
            )
        })?;
        let dir = file.parent().context("manifest path has no parent")?;
        for table in DROPPED_TABLES {
            manifest.remove(table);
        }
        if let Some(Value::Table(profiles)) = manifest.get_mut("profile") {
            keep_built_profile(profiles, BUILT_PROFILE);
            if profiles.is_empty() {
                manifest.remove("profile");
            }
        }
        if let Some(Value::Table(package)) = manifest.get_mut("package") {
            drop_descriptive_keys(package);
            if is_member && matches!(package.get("version"), Some(Value::String(_))) {
                package.insert("version".into(), Value::String(MASKED_VERSION.into()));
            }
        }
        self.visit_dependency_tables(&mut manifest, dir, file)?;
        if let Some(Value::Table(target)) = manifest.get_mut("target") {
            for (_, platform) in target.iter_mut() {
                if let Value::Table(platform) = platform {
                    self.visit_dependency_tables(platform, dir, file)?;
                }
            }
        }
        for section in ["patch", "replace"] {
            if let Some(Value::Table(table)) = manifest.get_mut(section) {
                for (_, entries) in table.iter_mut() {
                    if let Value::Table(entries) = entries {
                        self.check_path_dependencies(entries, dir, file, section)?;
                    }
                }
            }
        }
        if let Some(Value::Table(workspace)) = manifest.get_mut("workspace") {
            workspace.remove("metadata");
            workspace.remove("lints");
            if let Some(Value::Table(package)) = workspace.get_mut("package") {
                drop_descriptive_keys(package);
                if package.contains_key("version") {
                    package.insert("version".into(), Value::String(MASKED_VERSION.into()));
                }
            }
            if let Some(Value::Table(deps)) = workspace.get_mut("dependencies") {
                self.check_path_dependencies(deps, dir, file, "workspace.dependencies")?;
            }
        }
        let canonical = toml::to_string(&manifest)
            .with_context(|| format!("{}: cannot re-serialise", file.display()))?;
        Ok((canonical, manifest))
    }

    fn visit_dependency_tables(&self, table: &mut Table, dir: &Path, file: &Path) -> Result<()> {
        for key in DEPENDENCY_TABLES {
            if let Some(Value::Table(deps)) = table.get_mut(key) {
                self.check_path_dependencies(deps, dir, file, key)?;
            }
        }
        Ok(())
    }

    /// Path dependencies must stay inside the workspace (the base context holds nothing else),
    /// and a member's version requirement is dropped because member versions are masked.
    fn check_path_dependencies(
        &self,
        deps: &mut Table,
        dir: &Path,
        file: &Path,
        section: &str,
    ) -> Result<()> {
        for (name, spec) in deps.iter_mut() {
            let Value::Table(spec) = spec else { continue };
            let Some(Value::String(path)) = spec.get("path") else {
                continue;
            };
            let target = lexical_normalise(&dir.join(path));
            if !target.starts_with(self.root) {
                bail!(
                    "{}: [{section}] `{name}` has path = {path:?}, outside the workspace ({}); move the crate into the workspace or depend on a published version",
                    file.display(),
                    self.root.display()
                );
            }
            if !self.member_dirs.contains(&target) {
                bail!(
                    "{}: [{section}] `{name}` has path = {path:?}, which is not a workspace member; add it to [workspace] members",
                    file.display()
                );
            }
            spec.remove("version");
        }
        Ok(())
    }
}

/// Keeps `built` and the chain of profiles it `inherits` from; drops every other profile.
pub(super) fn keep_built_profile(profiles: &mut Table, built: &str) {
    let mut chain = vec![built.to_owned()];
    let mut current = built.to_owned();
    while let Some(parent) = profiles
        .get(&current)
        .and_then(|p| p.get("inherits"))
        .and_then(Value::as_str)
    {
        if chain.iter().any(|c| c == parent) {
            break;
        }
        chain.push(parent.to_owned());
        current = parent.to_owned();
    }
    profiles.retain(|name, _| chain.iter().any(|c| c == name));
}

pub(super) fn drop_descriptive_keys(package: &mut Table) {
    for key in DROPPED_PACKAGE_KEYS {
        package.remove(key);
    }
}

/// `a/b/../c` → `a/c` without touching the file system (the target may not exist).
pub(super) fn lexical_normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// `.cargo/config.toml` without comments or formatting; `[alias]` cannot change a build.
pub fn normalise_cargo_config(text: &str, file: &Path) -> Result<String> {
    let mut config: Table = toml::from_str(text).map_err(|err| {
        anyhow::anyhow!(
            "{}: malformed cargo config: {}",
            file.display(),
            err.to_string().trim_end()
        )
    })?;
    config.remove("alias");
    Ok(toml::to_string(&config)?)
}
