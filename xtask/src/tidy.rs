//! Tidy: cheap invariants of the repository, run as tests. Every module says what it is for, no
//! trailing whitespace, generators' check modes pass on the committed tree, the Dockerfile's
//! base pin has one form; and for the docs (`docs`), README.md's command table is generated
//! from the CLI and every path the docs name exists.
//! Lints that clippy can judge (dbg!, where processes are spawned) live in `[workspace.lints]`
//! and clippy.toml instead, and `cargo xtask test` runs clippy.

mod docs;

use std::path::{Path, PathBuf};

use clap::Parser;
use xtask_core::{files, workspace};

use crate::flags;

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
