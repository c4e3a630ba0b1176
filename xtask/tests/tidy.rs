//! Tidy checks over the workspace's own sources: every module says what it is for, nothing
//! debug-only is left in, no trailing whitespace, and the committed base pin is not stale.

mod support;

use std::path::{Path, PathBuf};

use support::{Xtask, repo_root};

fn rust_sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            if !path.ends_with("target") && !path.ends_with("test_data") {
                rust_sources(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn sources_are_tidy() {
    let root = repo_root();
    let mut files = Vec::new();
    rust_sources(&root.join("xtask"), &mut files);
    rust_sources(&root.join("crates"), &mut files);
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
            if line.contains(concat!("dbg", "!(")) {
                problems.push(format!("{name}:{}: a leftover dbg!", i + 1));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A generator's check mode passes on the committed tree (STYLE.md: check modes run as tests).
fn check_mode_passes(args: &[&str]) {
    let root = repo_root();
    // Xtask::ok asserts success and prints the command's output when it fails.
    Xtask::new(&root).ok(args);
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
fn seed_sql_is_current() {
    check_mode_passes(&["seed", "--check"]);
}
