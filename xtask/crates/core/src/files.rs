//! Files: generated files with a check mode, copying trees, content digests. Every generator
//! (`seed`, `env example`, and later `openapi`, `deploy blueprint`) writes through
//! `ensure_file_contents`, so each stale file is reported the same way.

use std::{fmt::Write as _, path::Path};

use anyhow::{Context, Result, bail};

/// Whether a generator writes its file or only verifies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Write,
    Check,
}

impl Mode {
    pub fn from_check(check: bool) -> Self {
        if check { Mode::Check } else { Mode::Write }
    }
}

/// Writes `contents` to `path` (relative to `root`), or in check mode fails with a short diff
/// and `regenerate`, the command that brings the file up to date. Prints the outcome on stdout.
pub fn ensure_file_contents(
    root: &Path,
    relative: &str,
    contents: &str,
    mode: Mode,
    regenerate: &str,
) -> Result<()> {
    let path = root.join(relative);
    let current = std::fs::read_to_string(&path).ok();
    if current.as_deref() == Some(contents) {
        println!("{relative} is current");
        return Ok(());
    }
    match mode {
        Mode::Check => {
            let current = current.unwrap_or_default();
            bail!(
                "{} is stale:\n{}\nrun `{regenerate}`",
                path.display(),
                short_diff(&current, contents)
            )
        }
        Mode::Write => {
            std::fs::write(&path, contents)
                .with_context(|| format!("writing {}", path.display()))?;
            println!("{relative}");
            Ok(())
        }
    }
}

/// The first differing lines, with two lines of context and both lengths.
pub fn short_diff(old: &str, new: &str) -> String {
    let old: Vec<&str> = old.lines().collect();
    let new: Vec<&str> = new.lines().collect();
    let first = old
        .iter()
        .zip(&new)
        .position(|(a, b)| a != b)
        .unwrap_or(old.len().min(new.len()));
    let mut out = format!("first difference at line {}:\n", first + 1);
    for i in first.saturating_sub(2)..(first + 3).min(old.len().max(new.len())) {
        match (old.get(i), new.get(i)) {
            (Some(a), Some(b)) if a == b => {
                let _ = writeln!(out, "  {a}");
            }
            (a, b) => {
                if let Some(a) = a {
                    let _ = writeln!(out, "- {a}");
                }
                if let Some(b) = b {
                    let _ = writeln!(out, "+ {b}");
                }
            }
        }
    }
    let _ = write!(
        out,
        "(committed: {} lines, rendered: {} lines)",
        old.len(),
        new.len()
    );
    out
}

/// Copies the tree at `from` into `to`, creating directories as needed.
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Lower-case hex of `bytes`, as digests are written.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_diff_names_the_first_difference() {
        let diff = short_diff("a\nb\nc\n", "a\nB\nc\n");
        assert!(diff.starts_with("first difference at line 2:"), "{diff}");
        assert!(diff.contains("- b\n+ B\n"), "{diff}");
    }

    #[test]
    fn check_mode_fails_with_the_command_and_leaves_the_file() {
        let dir = std::env::temp_dir().join(format!("xtask-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("f.txt"), "old\n").unwrap();
        let err = ensure_file_contents(&dir, "f.txt", "new\n", Mode::Check, "cargo xtask gen")
            .unwrap_err()
            .to_string();
        assert!(err.contains("run `cargo xtask gen`"), "{err}");
        assert_eq!(std::fs::read_to_string(dir.join("f.txt")).unwrap(), "old\n");
        ensure_file_contents(&dir, "f.txt", "new\n", Mode::Write, "cargo xtask gen").unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("f.txt")).unwrap(), "new\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hex_is_lower_case() {
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
    }
}
