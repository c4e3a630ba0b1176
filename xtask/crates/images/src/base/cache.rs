//! The base key's cache: the computed inputs, stored under the target directory by a digest of
//! the raw bytes of everything the key reads (the member list and targets from `cargo metadata
//! --no-deps`, every manifest, Cargo.lock, the toolchain file, the cargo config,
//! Dockerfile.base, the extra inputs, the xtask settings and the scheme). The key is a pure
//! function of those bytes (cargo resolves `--locked`, and a locked package's manifest is fixed
//! by its checksum), so a hit is exact; any edit is a miss and recomputes.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::hash::{self, BaseInputs, Input};
use xtask_core::{
    files::hex,
    workspace::{self, Workspace},
};

/// Cached keys kept; older ones are removed (one per branch or edit being switched between).
const KEEP: usize = 16;

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
    let members: Value =
        serde_json::from_slice(no_deps_metadata).context("parsing cargo metadata")?;
    let manifests = members["packages"]
        .as_array()
        .context("parsing cargo metadata: no array `packages`")?
        .iter()
        .map(|p| {
            p["manifest_path"]
                .as_str()
                .map(std::path::PathBuf::from)
                .context("parsing cargo metadata: a package without a string `manifest_path`")
        })
        .collect::<Result<Vec<_>>>()?;
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
    files.extend(manifests);
    for file in files {
        let label = file.display().to_string();
        match std::fs::read(&file) {
            Ok(bytes) => feed(&label, &bytes),
            Err(_) => feed(&label, b"\xffabsent"),
        }
    }
    Ok(hex(&hasher.finalize()))
}

/// An entry, one JSON object: the inputs (`context_path` null when the input is no file of the
/// context), the stubs and build args as `[path or name, text]` pairs, and the hash. The fields
/// are in alphabetical order, the order the keys have always been written in.
#[derive(Serialize, Deserialize)]
struct Entry {
    build_args: Vec<(String, String)>,
    hash: String,
    inputs: Vec<EntryInput>,
    member_stubs: Vec<(String, String)>,
    stubs: Vec<(String, String)>,
}

#[derive(Serialize, Deserialize)]
struct EntryInput {
    content: String,
    context_path: Option<String>,
    name: String,
}

/// The cached inputs for `key`, if any (a damaged entry is a miss).
pub fn load(dir: &Path, key: &str) -> Option<BaseInputs> {
    let bytes = std::fs::read(dir.join(format!("{key}.json"))).ok()?;
    let stored: Entry = serde_json::from_slice(&bytes).ok()?;
    let restore = |stubs: Vec<(String, String)>| {
        stubs
            .into_iter()
            .map(|(path, content)| Some((path, hash::stub_content(&content)?)))
            .collect::<Option<Vec<_>>>()
    };
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
        stubs: restore(stored.stubs)?,
        member_stubs: restore(stored.member_stubs)?,
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
    let owned = |stubs: &[(String, &str)]| {
        stubs
            .iter()
            .map(|(path, content)| (path.clone(), (*content).to_owned()))
            .collect()
    };
    let stored = Entry {
        build_args: inputs.build_args.clone(),
        hash: inputs.hash.clone(),
        inputs: inputs
            .inputs
            .iter()
            .zip(contents)
            .map(|(i, content)| EntryInput {
                content,
                context_path: i.context_path.clone(),
                name: i.name.clone(),
            })
            .collect(),
        member_stubs: owned(&inputs.member_stubs),
        stubs: owned(&inputs.stubs),
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
