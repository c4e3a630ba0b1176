//! Tidy for the documentation: README.md's command table is generated from the CLI definition
//! (so a command cannot be documented twice, or documented after it is gone), README.md stays a
//! door of at most 150 lines, and every repository path and link that README.md,
//! ARCHITECTURE.md and docs/*.md name exists.

use std::{
    collections::BTreeSet,
    fmt::Write as _,
    path::{Path, PathBuf},
};

// `Xtask::command()` is an inherent method while the flags are declared over clap's builder, and
// `CommandFactory`'s once they use clap's derive; the import serves the second and is harmless
// with the first.
#[allow(unused_imports)]
use clap::CommandFactory as _;

use super::root;
use xtask_core::files;

use crate::flags;

const TABLE_START: &str = "<!-- commands:start -->";
const TABLE_END: &str = "<!-- commands:end -->";
const README_MAX_LINES: usize = 150;
const REGENERATE: &str = "UPDATE_EXPECT=1 cargo test -p xtask --lib tidy";

/// The command table: one row per command a user can run (a leaf, or a command whose
/// subcommand is optional), with its flags' usage and its about line.
pub(super) fn command_table(cli: &clap::Command) -> String {
    let mut out = String::from("| command | what it does |\n|---|---|\n");
    // The root's global flags (`--workspace`, `--label`, `--no-wait`) are listed once, below
    // the table, rather than on every row.
    let root_globals: BTreeSet<&str> = cli
        .get_arguments()
        .filter(|a| a.is_global_set())
        .map(|a| a.get_id().as_str())
        .collect();
    for sub in visible_subcommands(cli) {
        rows(sub, cli.get_name(), &[], &root_globals, &mut out);
    }
    out
}

fn visible_subcommands(cmd: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    cmd.get_subcommands()
        .filter(|c| !c.is_hide_set() && c.get_name() != "help")
}

fn rows<'a>(
    cmd: &'a clap::Command,
    parent: &str,
    inherited: &[&'a clap::Arg],
    root_globals: &BTreeSet<&str>,
    out: &mut String,
) {
    let name = format!("{parent} {}", cmd.get_name());
    // A subcommand's global flags (`deploy --target`) apply to its own subcommands too; clap
    // copies them down only when it builds the command, so they are carried here.
    let mut args: Vec<&clap::Arg> = inherited.to_vec();
    args.extend(
        cmd.get_arguments()
            .filter(|a| !root_globals.contains(a.get_id().as_str())),
    );
    let children: Vec<&clap::Command> = visible_subcommands(cmd).collect();
    if children.is_empty() || !cmd.is_subcommand_required_set() {
        let about = cmd
            .get_about()
            .map(|a| a.to_string())
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let _ = writeln!(
            out,
            "| `{}` | {} |",
            cell(&usage(&name, &args)),
            cell(&about)
        );
    }
    let globals: Vec<&clap::Arg> = args.iter().copied().filter(|a| a.is_global_set()).collect();
    for child in children {
        rows(child, &name, &globals, root_globals, out);
    }
}

/// `cargo xtask base build [--push] [--force] [--json]`: options first, then positionals.
fn usage(name: &str, args: &[&clap::Arg]) -> String {
    let shown = || {
        args.iter()
            .filter(|a| !a.is_hide_set() && !matches!(a.get_id().as_str(), "help" | "version"))
    };
    let mut out = name.to_owned();
    for arg in shown().filter(|a| !a.is_positional()) {
        let mut flag = match (arg.get_long(), arg.get_short()) {
            (Some(long), _) => format!("--{long}"),
            (None, Some(short)) => format!("-{short}"),
            (None, None) => continue,
        };
        if arg.get_action().takes_values() {
            let _ = write!(flag, " <{}>", value_name(arg));
        }
        if matches!(arg.get_action(), clap::ArgAction::Append) {
            flag.push_str("...");
        }
        let _ = if arg.is_required_set() {
            write!(out, " {flag}")
        } else {
            write!(out, " [{flag}]")
        };
    }
    for arg in shown().filter(|a| a.is_positional()) {
        let mut value = format!("<{}>", value_name(arg));
        if matches!(arg.get_action(), clap::ArgAction::Append) {
            value.push_str("...");
        }
        let _ = if arg.is_last_set() {
            write!(out, " [-- {value}]")
        } else if arg.is_required_set() {
            write!(out, " {value}")
        } else {
            write!(out, " [{value}]")
        };
    }
    out
}

fn value_name(arg: &clap::Arg) -> String {
    arg.get_value_names()
        .and_then(|names| names.first())
        .map_or_else(|| arg.get_id().as_str().to_uppercase(), |n| n.to_string())
}

/// Text for a Markdown table cell: a `|` would end the cell, even inside a code span.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// README.md with `table` between the markers.
fn with_table(readme: &str, table: &str) -> String {
    let (head, rest) = readme
        .split_once(TABLE_START)
        .unwrap_or_else(|| panic!("README.md has no `{TABLE_START}` line"));
    let (_, tail) = rest
        .split_once(TABLE_END)
        .unwrap_or_else(|| panic!("README.md has no `{TABLE_END}` line after `{TABLE_START}`"));
    format!("{head}{TABLE_START}\n{table}{TABLE_END}{tail}")
}

#[test]
fn readme_command_table_is_generated_from_the_cli() {
    let path = root().join("README.md");
    let committed = std::fs::read_to_string(&path).unwrap();
    let table = command_table(&flags::Xtask::command());
    let rendered = with_table(&committed, &table);
    if rendered == committed {
        return;
    }
    if std::env::var_os("UPDATE_EXPECT").is_some() {
        std::fs::write(&path, rendered).unwrap();
        return;
    }
    panic!(
        "README.md's command table differs from the CLI (`cargo xtask --help`):\n{}\nrun `{REGENERATE}`",
        files::short_diff(&committed, &rendered)
    );
}

#[test]
fn the_command_table_has_one_row_per_leaf_with_its_usage() {
    use clap::{Arg, ArgAction, Command};
    let cli = Command::new("x")
        .arg(
            Arg::new("quiet")
                .long("quiet")
                .global(true)
                .action(ArgAction::SetTrue),
        )
        .subcommand(
            Command::new("db")
                .about("The database.")
                .subcommand_required(true)
                .arg(Arg::new("target").long("target").global(true))
                .subcommand(
                    Command::new("push")
                        .about("Pushes | migrates,\n  twice.")
                        .arg(
                            Arg::new("dry_run")
                                .long("dry-run")
                                .action(ArgAction::SetTrue),
                        )
                        .arg(Arg::new("name").required(true)),
                )
                .subcommand(Command::new("gone").hide(true)),
        )
        .subcommand(
            Command::new("test")
                .arg(Arg::new("args").last(true).action(ArgAction::Append))
                .arg(Arg::new("label").long("label").action(ArgAction::Append)),
        );
    assert_eq!(
        command_table(&cli),
        "| command | what it does |\n|---|---|\n\
         | `x db push [--target <TARGET>] [--dry-run] <NAME>` | Pushes \\| migrates, twice. |\n\
         | `x test [--label <LABEL>...] [-- <ARGS>...]` |  |\n"
    );
}

#[test]
fn readme_is_a_door_of_at_most_150_lines() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines, at most {README_MAX_LINES}: move the detail to docs/*.md \
         or ARCHITECTURE.md and link to it"
    );
}

/// README.md, ARCHITECTURE.md and every page under docs/, as (path relative to the root, text).
fn documents(root: &Path) -> Vec<(PathBuf, String)> {
    let mut paths = vec![PathBuf::from("README.md"), PathBuf::from("ARCHITECTURE.md")];
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .map(|dir| {
            dir.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "md"))
                .map(|p| p.strip_prefix(root).unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    pages.sort();
    paths.extend(pages);
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(root.join(&p))
                .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
            (p, text)
        })
        .collect()
}

/// The lines of a Markdown text outside fenced code blocks, with their numbers.
fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            out.push((i + 1, line));
        }
    }
    out
}

/// Top-level entries a path in the docs may start with: a code span starting with anything
/// else (`target/…`, `src/tls.rs`, `xtask::deploy`) is not taken for a repository path.
const REPO_ENTRIES: [&str; 20] = [
    "xtask",
    "crates",
    "supabase",
    "docs",
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
    "ARCHITECTURE.md",
    "clippy.toml",
    "render.yaml",
    "openapi.json",
    "smoke.toml",
    ".github",
];

/// Repository paths (relative to the root) named in a document's code spans.
fn code_span_paths(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (line_no, line) in prose(text) {
        for span in line.split('`').skip(1).step_by(2) {
            let span = span.trim_end_matches([',', '.', ':', ';', ')']);
            if span.is_empty()
                || span.contains([' ', '*', '<', '{', '$', '…', '=', '@', '|', '#'])
                || !REPO_ENTRIES.contains(&span.split('/').next().unwrap_or_default())
            {
                continue;
            }
            out.push((line_no, span.to_owned()));
        }
    }
    out
}

/// Relative link targets, `[text](target)`, as written.
fn link_targets(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (line_no, line) in prose(text) {
        for part in line.split("](").skip(1) {
            let Some(target) = part.split(')').next() else {
                continue;
            };
            let target = target.split_whitespace().next().unwrap_or_default();
            if !target.contains("://") && !target.starts_with("mailto:") {
                out.push((line_no, target.to_owned()));
            }
        }
    }
    out
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    prose(text)
        .into_iter()
        .filter(|(_, l)| l.starts_with('#'))
        .map(|(_, l)| anchor(l.trim_start_matches('#')))
        .collect()
}

/// Everything the documents name that does not exist: "file:line: what".
fn missing_in_docs(root: &Path) -> Vec<String> {
    let docs = documents(root);
    let mut problems = Vec::new();
    for (doc, text) in &docs {
        for (line, path) in code_span_paths(text) {
            if !root.join(&path).exists() {
                problems.push(format!("{}:{line}: `{path}` does not exist", doc.display()));
            }
        }
        for (line, target) in link_targets(text) {
            let (file, fragment) = target.split_once('#').unwrap_or((&target, ""));
            let file = if file.is_empty() {
                doc.clone()
            } else {
                doc.parent().unwrap_or(Path::new("")).join(file)
            };
            let Ok(linked) = std::fs::read_to_string(root.join(&file)) else {
                if !root.join(&file).is_dir() {
                    problems.push(format!(
                        "{}:{line}: the link to `{target}` leads nowhere",
                        doc.display()
                    ));
                }
                continue;
            };
            if !fragment.is_empty() && !anchors(&linked).contains(fragment) {
                problems.push(format!(
                    "{}:{line}: `{target}`: {} has no heading `#{fragment}`",
                    doc.display(),
                    file.display()
                ));
            }
        }
    }
    problems
}

#[test]
fn every_path_and_link_the_docs_name_exists() {
    let root = root();
    let named: usize = documents(&root)
        .iter()
        .map(|(_, t)| code_span_paths(t).len())
        .sum();
    assert!(named > 30, "found the paths the docs name: {named}");
    let problems = missing_in_docs(&root);
    assert!(
        problems.is_empty(),
        "the docs name what does not exist:\n{}",
        problems.join("\n")
    );
}

#[test]
fn doc_paths_and_anchors_are_read_as_written() {
    let text = "See `xtask/src/flags.rs`, `target/x`, `crates/*.rs` and `Cargo.toml:`.\n\
                ```\nxtask/nothing.rs `xtask/fenced.rs`\n```\n\
                [ops](docs/reliability.md#what-survives-what) [web](https://x.y/z)\n";
    assert_eq!(
        code_span_paths(text),
        [
            (1, "xtask/src/flags.rs".to_owned()),
            (1, "Cargo.toml".to_owned())
        ]
    );
    assert_eq!(
        link_targets(text),
        [(5, "docs/reliability.md#what-survives-what".to_owned())]
    );
    assert_eq!(
        anchor(" Deploying (`cargo xtask deploy`)"),
        "deploying-cargo-xtask-deploy"
    );
}

/// The Rust sources of the repository, relative to the root, with their line counts.
fn rust_line_counts(root: &Path) -> Vec<(String, usize)> {
    super::sources_under(root, &["xtask", "crates"])
        .into_iter()
        .map(|file| {
            let lines = std::fs::read_to_string(&file).unwrap().lines().count();
            let name = file.strip_prefix(root).unwrap().display().to_string();
            (name, lines)
        })
        .collect()
}

#[test]
fn long_files_are_named_in_architecture() {
    const MAX_LINES: usize = 700;
    let root = root();
    let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let files = rust_line_counts(&root);
    assert!(files.len() > 10, "found the sources: {}", files.len());
    let unnamed: Vec<String> = files
        .iter()
        .filter(|(name, lines)| *lines > MAX_LINES && !architecture.contains(&format!("`{name}`")))
        .map(|(name, lines)| format!("{name}: {lines} lines"))
        .collect();
    assert!(
        unnamed.is_empty(),
        "files over {MAX_LINES} lines: split each, or name it with a reason under ARCHITECTURE.md's \
         invariants:\n{}",
        unnamed.join("\n")
    );
}
