//! Tidy: cheap invariants of the repository, run as tests. Every module says what it is for, no
//! trailing whitespace, generators' check modes pass on the committed tree, the Dockerfile's
//! base pin has one form, and the README's command table and paths match what exists.
//! Lints that clippy can judge (dbg!, where processes are spawned) live in `[workspace.lints]`
//! and clippy.toml instead, and `cargo xtask test` runs clippy.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use crate::{files, flags, workspace};

fn root() -> PathBuf {
    workspace::find_root().expect("the tests run inside the workspace")
}

/// The Rust sources below these directories of the repository, outside target/ and test_data/
/// directories.
fn sources_under(root: &Path, dirs: &[&str]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in dirs {
        let found = files::tree_files(&root.join(dir), files::Links::Skip, |d| {
            d.ends_with("target") || d.ends_with("test_data")
        })
        .unwrap();
        files.extend(
            found
                .into_iter()
                .filter(|p| p.extension().is_some_and(|e| e == "rs")),
        );
    }
    files
}

#[test]
fn sources_are_tidy() {
    let root = root();
    let files = sources_under(&root, &["xtask", "crates"]);
    assert!(files.len() > 10, "found the sources: {files:?}");
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let name = file.strip_prefix(&root).unwrap().display().to_string();
        if !text.starts_with("//!") {
            problems.push(format!(
                "{name}: starts without a `//!` module doc saying what it is for"
            ));
        }
        for (i, line) in text.lines().enumerate() {
            if line.ends_with(' ') || line.ends_with('\t') {
                problems.push(format!("{name}:{}: trailing whitespace", i + 1));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Runs `cargo xtask <args>` in-process on this repository; a generator's check mode passes on
/// the committed tree (every check mode also runs as a test).
fn check_mode_passes(args: &[&str]) {
    let root = root();
    let mut argv = vec!["cargo xtask", "--workspace", root.to_str().unwrap()];
    argv.extend_from_slice(args);
    if let Err(err) = crate::run(flags::Xtask::parse_from(argv)) {
        panic!("cargo xtask {} failed: {err:#}", args.join(" "));
    }
}

#[test]
fn committed_base_pin_matches_the_inputs() {
    // Render builds FROM the pinned base: a dependency change without a new pin ships a stale
    // base. The check compares the pinned tag with the hash, so it needs no registry.
    check_mode_passes(&["base", "pin", "--check"]);
}

#[test]
fn env_example_is_current() {
    check_mode_passes(&["env", "example", "--check"]);
}

#[test]
fn render_yaml_is_current() {
    check_mode_passes(&["deploy", "blueprint", "--check"]);
}

#[test]
fn seed_sql_is_current() {
    check_mode_passes(&["seed", "--check"]);
}

#[test]
fn dockerfile_builds_from_one_pinned_base() {
    let text = std::fs::read_to_string(root().join(workspace::APP_DOCKERFILE)).unwrap();
    let pins: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("ARG BASE_IMAGE="))
        .collect();
    assert_eq!(pins.len(), 1, "exactly one `ARG BASE_IMAGE=`: {pins:?}");
    assert!(
        pins[0].contains("@sha256:"),
        "the base is pinned by digest (run `cargo xtask base pin`): {}",
        pins[0]
    );
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("FROM ${BASE_IMAGE}")),
        "the Dockerfile builds FROM ${{BASE_IMAGE}}"
    );
}

/// The first cells of the README's command table.
fn readme_command_cells(readme: &str) -> Vec<&str> {
    let section = readme
        .split("\n## Commands\n")
        .nth(1)
        .expect("the README has a Commands section");
    section
        .lines()
        .take_while(|l| !l.starts_with("## "))
        .filter(|l| l.starts_with("| `cargo xtask"))
        .filter_map(|l| l.split('|').nth(1))
        .collect()
}

#[test]
fn readme_command_table_names_exactly_the_cli_commands() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut documented = BTreeSet::new();
    for cell in readme_command_cells(&readme) {
        for part in cell.split("cargo xtask ").skip(1) {
            let name: String = part
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            documented.insert(name);
        }
    }
    let cli: BTreeSet<String> = flags::Command::names()
        .into_iter()
        .filter(|n| n != "help")
        .collect();
    assert_eq!(
        documented, cli,
        "the README's command table and `cargo xtask --help` disagree"
    );
}

/// Top-level entries a README path may start with.
const REPO_ENTRIES: [&str; 17] = [
    "xtask",
    "crates",
    "supabase",
    ".cargo",
    ".ci",
    "Cargo.toml",
    "Cargo.lock",
    "Dockerfile",
    "Dockerfile.base",
    "rust-toolchain.toml",
    ".env.example",
    ".dockerignore",
    "README.md",
    "clippy.toml",
    "render.yaml",
    "openapi.json",
    "smoke.toml",
];

/// Repository paths the README names: in backticks, and in the layout block.
fn readme_paths(readme: &str) -> BTreeSet<String> {
    let mut candidates: Vec<String> = readme
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    if let Some(layout) = readme.split("\n## Layout\n").nth(1) {
        // An indented entry lies in the last unindented directory above it.
        let block = layout.split("```").nth(1).unwrap_or_default();
        let mut parent = String::new();
        for line in block.lines() {
            let Some(entry) = line.split_whitespace().next() else {
                continue;
            };
            if line.starts_with(' ') {
                candidates.push(format!("{parent}{entry}"));
            } else {
                if entry.ends_with('/') {
                    parent = entry.to_owned();
                }
                candidates.push(entry.to_owned());
            }
        }
    }
    candidates
        .iter()
        .map(String::as_str)
        .map(|c| c.trim_end_matches([',', '.', ':']))
        .filter(|c| {
            !c.is_empty()
                && !c.contains([' ', '*', '<', '{', '$', '…'])
                && REPO_ENTRIES.contains(&c.split('/').next().unwrap_or_default())
        })
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_path_the_readme_names_exists() {
    let root = root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let paths = readme_paths(&readme);
    assert!(paths.len() > 10, "found the README's paths: {paths:?}");
    let missing: Vec<&String> = paths.iter().filter(|p| !root.join(p).exists()).collect();
    assert!(
        missing.is_empty(),
        "the README names missing paths: {missing:?}"
    );
}

#[test]
fn only_the_docker_module_spells_docker_commands() {
    // clippy.toml confines `Command::new` to process.rs; docker's command line is a string, so
    // this check keeps it in docker.rs (and docker/), where it is spelled once. Every xtask
    // crate is scanned: the command crates under xtask/crates as much as xtask's own.
    let files = sources_under(&root(), &["xtask/src", "xtask/crates"]);
    assert!(
        files.iter().any(|f| f.ends_with("docker.rs")),
        "found the docker module among the sources: {files:?}"
    );
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| !f.ends_with("docker.rs") && !f.parent().is_some_and(|p| p.ends_with("docker")))
        .filter(|f| !f.ends_with("tidy.rs"))
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            // `command("docker")`, `sh.cmd("docker")`, `cmd!(sh, "docker …")`.
            text.contains("(\"docker\"") || text.contains(", \"docker ")
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "docker's command line is spelled outside xtask/crates/core/src/docker.rs: {offenders:?}"
    );
}
