//! The inputs of the base key beyond the member manifests' pruning: each manifest's canonical
//! text with its stub sources, the lockfile cargo derives for the staged context, the cargo
//! configuration, Dockerfile.base with the pinned toolchain and the extra `base-inputs`, and the
//! inputs that describe the build rather than a file.

use super::*;

/// The canonical text of each manifest the base builds, and the stub sources of their targets.
pub(super) fn manifest_inputs<'a>(
    root: &Path,
    root_table: &Table,
    root_package: Option<&Package>,
    others: impl Iterator<Item = (&'a Package, &'a Table)>,
) -> Result<(Vec<Input>, Vec<Stub>)> {
    let mut inputs = Vec::new();
    let mut stubs = Vec::new();
    let root_canonical = toml::to_string(root_table).with_context(|| {
        format!(
            "{}: cannot re-serialise",
            root.join(workspace::ROOT_MANIFEST).display()
        )
    })?;
    inputs.push(file_input(
        "manifest:Cargo.toml",
        workspace::ROOT_MANIFEST,
        root_canonical.into_bytes(),
    ));
    if let Some(package) = root_package {
        stubs.extend(stub_sources(root, root, package, root_table)?);
    }
    for (package, table) in others {
        let relative = relative_slash(root, &package.manifest_path)?;
        let canonical = toml::to_string(table)
            .with_context(|| format!("{}: cannot re-serialise", package.manifest_path.display()))?;
        inputs.push(file_input(
            &format!("manifest:{relative}"),
            &relative,
            canonical.into_bytes(),
        ));
        let dir = package
            .manifest_path
            .parent()
            .context("manifest path has no parent")?;
        stubs.extend(stub_sources(root, dir, package, table)?);
    }
    stubs.sort();
    stubs.dedup();
    Ok((inputs, stubs))
}

/// Cargo.lock as cargo derives it for the staged context (the pruned manifests and stubs): the
/// lockfile the base build accepts with --locked.
pub(super) fn pruned_lock_input(
    root: &Path,
    inputs: &[Input],
    stubs: &[Stub],
    prune_lock: &dyn Fn(&Staging<'_>) -> Result<String>,
) -> Result<Input> {
    let lock_path = root.join(workspace::LOCKFILE);
    let lock = std::fs::read_to_string(&lock_path).map_err(|_| {
        anyhow::anyhow!(
            "{} is missing: run `cargo generate-lockfile` and commit it (the base image is built with --locked)",
            lock_path.display()
        )
    })?;
    let staging = Staging {
        files: inputs
            .iter()
            .filter_map(|i| Some((i.context_path.clone()?, i.content.clone())))
            .chain(
                stubs
                    .iter()
                    .map(|(path, content)| (path.clone(), content.as_bytes().to_vec())),
            )
            .collect(),
        lockfile: &lock,
    };
    let pruned_lock = prune_lock(&staging).context("deriving the base context's Cargo.lock")?;
    Ok(file_input(
        "Cargo.lock",
        workspace::LOCKFILE,
        pruned_lock.into_bytes(),
    ))
}

/// The cargo configuration files, normalised.
pub(super) fn cargo_config_inputs(root: &Path) -> Result<Vec<Input>> {
    let mut inputs = Vec::new();
    for config_file in workspace::CARGO_CONFIG_FILES {
        let path = root.join(config_file);
        if path.exists() {
            let text = std::fs::read_to_string(&path)?;
            inputs.push(file_input(
                config_file,
                config_file,
                normalise_cargo_config(&text, &path)?.into_bytes(),
            ));
        }
    }
    Ok(inputs)
}

/// Dockerfile.base, the pinned toolchain and the extra `base-inputs`; returns the toolchain's
/// channel, a build argument of the base.
pub(super) fn toolchain_and_extra_inputs(
    root: &Path,
    config: &Config,
    inputs: &mut Vec<Input>,
) -> Result<String> {
    inputs.push(match raw_file(root, workspace::BASE_DOCKERFILE) {
        Ok(input) => input,
        // Another workspace measured with --workspace may have none: the hash still works,
        // `base build` names the missing file.
        Err(_) if !root.join(workspace::BASE_DOCKERFILE).exists() => Input {
            name: workspace::BASE_DOCKERFILE.into(),
            content: b"absent".to_vec(),
            context_path: None,
        },
        Err(err) => return Err(err),
    });
    let toolchain_name = workspace::toolchain_file(root).with_context(|| {
        format!(
            "{} (or the legacy rust-toolchain) pins the toolchain of the base image; create it",
            workspace::TOOLCHAIN_FILE
        )
    })?;
    let toolchain = raw_file(root, toolchain_name)?;
    let rust_version =
        workspace::toolchain_channel(&toolchain.content, &root.join(toolchain_name))?;
    inputs.push(toolchain);
    for extra in &config.base_inputs {
        let input = raw_file(root, extra).with_context(|| {
            format!("[workspace.metadata.xtask] base-inputs names `{extra}`, which cannot be read")
        })?;
        inputs.push(input);
    }
    Ok(rust_version)
}

/// The inputs that describe the build rather than a file: its arguments, the platform, the
/// scheme's version, the app packages, the context's members and the stub sources' layout.
pub(super) fn described_inputs(
    build_args: &[(String, String)],
    app_packages: &[String],
    context_names: &[&str],
    stubs: &[(String, &str)],
) -> Vec<Input> {
    let mut inputs = Vec::new();
    let build_args_text: String = build_args
        .iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect();
    inputs.push(Input {
        name: "build-args".into(),
        content: build_args_text.into_bytes(),
        context_path: None,
    });
    inputs.push(Input {
        name: "platform".into(),
        content: platform().into_bytes(),
        context_path: None,
    });
    inputs.push(Input {
        name: "scheme".into(),
        content: SCHEME.as_bytes().to_vec(),
        context_path: None,
    });

    let packages: String = app_packages.iter().map(|p| format!("{p}\n")).collect();
    inputs.push(file_input(
        "app-packages",
        CONTEXT_PACKAGES,
        packages.into_bytes(),
    ));
    let members_text: String = context_names.iter().map(|m| format!("{m}\n")).collect();
    inputs.push(file_input(
        "members",
        CONTEXT_MEMBERS,
        members_text.into_bytes(),
    ));
    let stub_layout: String = stubs
        .iter()
        .map(|(path, content)| format!("{path}\t{content:?}\n"))
        .collect();
    inputs.push(Input {
        name: "stubs".into(),
        content: stub_layout.into_bytes(),
        context_path: None,
    });
    inputs
}
