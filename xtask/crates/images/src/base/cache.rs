//! The base key's cache: the computed inputs, stored under the target directory by a digest of
//! the raw bytes of everything the key reads (the member list and targets from `cargo metadata
//! --no-deps`, every manifest, Cargo.lock, the toolchain file, the cargo config,
//! Dockerfile.base, the extra inputs, the xtask settings and the scheme). The key is a pure
//! function of those bytes (cargo resolves `--locked`, and a locked package's manifest is fixed
//! by its checksum), so a hit is exact; any edit is a miss and recomputes.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use xtask_core::sha256::Sha256;

use super::hash::{self, BaseInputs, Input};
use xtask_core::{
    files::hex,
    workspace::{self, Workspace},
};

/// Cached keys kept; older ones are removed (one per branch or edit being switched between).
const KEEP: usize = 16;

#[derive(Deserialize)]
struct Members {
    packages: Vec<ManifestPath>,
}

#[derive(Deserialize)]
struct ManifestPath {
    manifest_path: std::path::PathBuf,
}

/// The cache key of the workspace as it is on disk now.
pub fn key(ws: &Workspace, no_deps_metadata: &[u8]) -> Result<String> {
    let mut hasher = Sha256::new();
    let mut feed = |label: &str, bytes: &[u8]| {
        hasher.update(label.as_bytes());
        hasher.update(b"\0");
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    feed("scheme", hash::scheme().as_bytes());
    feed("platform", hash::platform().as_bytes());
    let toolchain = std::env::var("RUSTUP_TOOLCHAIN").unwrap_or_default();
    feed("RUSTUP_TOOLCHAIN", toolchain.as_bytes());
    feed(
        "config",
        format!("{:?}{:?}", ws.config.app_packages, ws.config.base_inputs).as_bytes(),
    );
    feed("metadata", no_deps_metadata);
    let members: Members =
        serde_json::from_slice(no_deps_metadata).context("parsing cargo metadata")?;
    let mut files: Vec<std::path::PathBuf> = [
        workspace::ROOT_MANIFEST,
        workspace::LOCKFILE,
        workspace::TOOLCHAIN_FILE,
        workspace::LEGACY_TOOLCHAIN_FILE,
        workspace::BASE_DOCKERFILE,
    ]
    .into_iter()
    .chain(workspace::CARGO_CONFIG_FILES)
    .chain(ws.config.base_inputs.iter().map(String::as_str))
    .map(|f| ws.path(f))
    .collect();
    files.extend(members.packages.into_iter().map(|p| p.manifest_path));
    for file in files {
        let label = file.display().to_string();
        match std::fs::read(&file) {
            Ok(bytes) => feed(&label, &bytes),
            Err(_) => feed(&label, b"\xffabsent"),
        }
    }
    Ok(hex(&hasher.finalize()))
}

#[derive(Serialize, Deserialize)]
struct Stored {
    inputs: Vec<StoredInput>,
    stubs: Vec<(String, String)>,
    member_stubs: Vec<(String, String)>,
    build_args: Vec<(String, String)>,
    hash: String,
}

#[derive(Serialize, Deserialize)]
struct StoredInput {
    name: String,
    content: String,
    context_path: Option<String>,
}

/// The cached inputs for `key`, if any (a damaged entry is a miss).
pub fn load(dir: &Path, key: &str) -> Option<BaseInputs> {
    let bytes = std::fs::read(dir.join(format!("{key}.json"))).ok()?;
    let stored: Stored = serde_json::from_slice(&bytes).ok()?;
    let restore = |stubs: Vec<(String, String)>| {
        stubs
            .into_iter()
            .map(|(path, content)| Some((path, hash::stub_content(&content)?)))
            .collect::<Option<Vec<_>>>()
    };
    let stubs = restore(stored.stubs)?;
    let member_stubs = restore(stored.member_stubs)?;
    Some(BaseInputs {
        inputs: stored
            .inputs
            .into_iter()
            .map(|i| Input {
                name: i.name,
                content: i.content.into_bytes(),
                context_path: i.context_path,
            })
            .collect(),
        stubs,
        member_stubs,
        build_args: stored.build_args,
        hash: stored.hash,
    })
}

/// Stores `inputs` under `key`; a failure only costs the next run a recomputation.
pub fn store(dir: &Path, key: &str, inputs: &BaseInputs) {
    let Some(contents) = inputs
        .inputs
        .iter()
        .map(|i| String::from_utf8(i.content.clone()).ok())
        .collect::<Option<Vec<_>>>()
    else {
        return;
    };
    let stored = Stored {
        inputs: inputs
            .inputs
            .iter()
            .zip(contents)
            .map(|(i, content)| StoredInput {
                name: i.name.clone(),
                content,
                context_path: i.context_path.clone(),
            })
            .collect(),
        stubs: inputs
            .stubs
            .iter()
            .map(|(p, c)| (p.clone(), (*c).to_owned()))
            .collect(),
        member_stubs: inputs
            .member_stubs
            .iter()
            .map(|(p, c)| (p.clone(), (*c).to_owned()))
            .collect(),
        build_args: inputs.build_args.clone(),
        hash: inputs.hash.clone(),
    };
    let Ok(json) = serde_json::to_vec(&stored) else {
        return;
    };
    // Written whole, then renamed: a concurrent reader never sees half a file.
    let partial = dir.join(format!("{key}.json.{}", std::process::id()));
    if std::fs::write(&partial, json).is_ok() {
        let _ = std::fs::rename(&partial, dir.join(format!("{key}.json")));
    }
    prune(dir);
}

fn prune(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, std::path::PathBuf)> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            Some((e.metadata().ok()?.modified().ok()?, e.path()))
        })
        .collect();
    if files.len() <= KEEP {
        return;
    }
    files.sort();
    for (_, path) in &files[..files.len() - KEEP] {
        let _ = std::fs::remove_file(path);
    }
}
