//! Files: generated files with a check mode, tree walks (and the one rule for symbolic links
//! that all of them follow, [`Links`]), copying trees, content digests. Every generator
//! (`seed`, `env example`, and later `openapi`, `deploy blueprint`) writes through
//! `ensure_file_contents`, so each stale file is reported the same way.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

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

/// What a tree walk does with a symbolic link. This is the one rule for links in every walk
/// xtask makes (walkdir, through [`walk`]): a link is never followed, because its target can lie
/// outside the tree (so a copy or a hash would take in what nobody meant to) or above it (a
/// loop). A walk that copies or hashes what it finds refuses the link with an error naming it,
/// since leaving it out would make the copy or the hash differ from the tree without a word; a
/// walk that only searches the tree (for sources, Dockerfiles) passes it by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Links {
    Refuse,
    Skip,
}

/// The directories and regular files below `root` (not `root` itself), in name order, parents
/// before their contents. `prune` gets each directory's path relative to `root` and leaves the
/// directory out, with everything in it, when it returns true. `root` itself may be a link.
pub fn walk(
    root: &Path,
    links: Links,
    mut prune: impl FnMut(&Path) -> bool,
) -> impl Iterator<Item = Result<walkdir::DirEntry>> {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(move |entry| {
            !(entry.file_type().is_dir()
                && prune(entry.path().strip_prefix(root).unwrap_or(entry.path())))
        })
        .filter_map(move |entry| {
            let entry = match entry {
                Ok(entry) => entry,
                Err(err) => return Some(Err(anyhow::Error::new(err).context("walking a tree"))),
            };
            if !entry.path_is_symlink() {
                return Some(Ok(entry));
            }
            match links {
                Links::Skip => None,
                Links::Refuse => Some(Err(anyhow::anyhow!(
                    "{} is a symbolic link: xtask copies and hashes trees without following \
                     links; put the file or directory it points to in its place",
                    entry.path().display()
                ))),
            }
        })
}

/// The regular files below `root`, in name order; see [`walk`] for `links` and `prune`.
pub fn tree_files(
    root: &Path,
    links: Links,
    prune: impl FnMut(&Path) -> bool,
) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in walk(root, links, prune) {
        let entry = entry?;
        if entry.file_type().is_file() {
            files.push(entry.into_path());
        }
    }
    Ok(files)
}

/// Copies the tree at `from` into `to`, creating directories (empty ones too) as needed. A
/// symbolic link in it is refused ([`Links`]).
pub fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    place_tree(from, to, |from, to| std::fs::copy(from, to).map(drop))
}

/// Like [`copy_tree`], with each file hard-linked where `from` and `to` share a file system
/// (no copy of hundreds of MB of toolchain), else copied. Only for trees nobody edits afterwards:
/// a write to a linked file changes the original.
pub fn link_tree(from: &Path, to: &Path) -> Result<()> {
    place_tree(from, to, |from, to| {
        std::fs::hard_link(from, to).or_else(|_| std::fs::copy(from, to).map(drop))
    })
}

fn place_tree(
    from: &Path,
    to: &Path,
    place: impl Fn(&Path, &Path) -> std::io::Result<()>,
) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in walk(from, Links::Refuse, |_| false) {
        let entry = entry?;
        let target = to.join(entry.path().strip_prefix(from)?);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target)
                .with_context(|| format!("creating {}", target.display()))?;
        } else {
            place(entry.path(), &target)
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

    /// A tree of files and an empty directory is copied whole; a symbolic link in it (to a
    /// file or a directory) is refused with its path, and a searching walk passes it by.
    #[test]
    fn trees_are_walked_without_following_links() {
        let dir = std::env::temp_dir().join(format!("xtask-walk-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let from = dir.join("from");
        std::fs::create_dir_all(from.join("a/b")).unwrap();
        std::fs::create_dir_all(from.join("empty")).unwrap();
        std::fs::create_dir_all(from.join("target")).unwrap();
        std::fs::write(from.join("top.txt"), "top").unwrap();
        std::fs::write(from.join("a/b/deep.txt"), "deep").unwrap();
        std::fs::write(from.join("target/built.txt"), "built").unwrap();

        copy_tree(&from, &dir.join("copy")).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("copy/a/b/deep.txt")).unwrap(),
            "deep"
        );
        assert!(dir.join("copy/empty").is_dir());
        let pruned = tree_files(&from, Links::Refuse, |p| p == Path::new("target")).unwrap();
        let names: Vec<_> = pruned
            .iter()
            .map(|p| {
                p.strip_prefix(&from)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, ["a/b/deep.txt", "top.txt"]);

        for (link, target) in [("file-link", "top.txt"), ("dir-link", "a")] {
            let path = from.join(link);
            std::os::unix::fs::symlink(target, &path).unwrap();
            let err = copy_tree(&from, &dir.join(format!("copy-{link}"))).unwrap_err();
            let message = format!("{err:#}");
            assert!(message.contains(&path.display().to_string()), "{message}");
            assert!(message.contains("symbolic link"), "{message}");
            assert!(tree_files(&from, Links::Refuse, |_| false).is_err());
            let found = tree_files(&from, Links::Skip, |_| false).unwrap();
            assert_eq!(found.len(), 3, "{found:?}");
            std::fs::remove_file(&path).unwrap();
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hex_is_lower_case() {
        assert_eq!(hex(&[0, 0xab, 0x10]), "00ab10");
    }
}
