//! The golden file of everything the command line shows by itself (`xtask/test_data/cli.txt`):
//! the long and short help of every command and subcommand, the version, and clap's error for a
//! list of bad command lines, each with its kind, exit code and stream. It pins help and errors
//! byte for byte, so a change to a flag declaration that a reader would see shows up as a diff.
//! `UPDATE_EXPECT=1 cargo test -p xtask --lib cli_output` rewrites it.

use std::fmt::Write as _;

use clap::{CommandFactory, Parser};

use super::Xtask;

/// The golden file, from the repository's root.
const GOLDEN: &str = "xtask/test_data/cli.txt";

/// Command lines that clap must refuse (or answer with help instead of running a command), each
/// after `cargo xtask`.
const BAD: &[&[&str]] = &[
    // No command, or a command group without its subcommand: help, as an error.
    &[],
    &["base"],
    &["db"],
    &["env"],
    &["preview"],
    &["migration"],
    &["image"],
    // Unknown subcommands and flags.
    &["deplyo"],
    &["frobnicate"],
    &["db", "restart"],
    &["deploy", "statuss"],
    &["--frobnicate"],
    &["seed", "--chek"],
    &["deploy", "--dryrun"],
    &["env", "check", "--readers", "build"],
    &["deploy", "--version"],
    &["help", "frobnicate"],
    &["help", "deploy", "frobnicate"],
    // Missing values.
    &["--workspace"],
    &["--label"],
    &["deploy", "--target"],
    &["deploy", "--image"],
    &["env", "check", "--env-file"],
    &["preview", "up", "--branch"],
    &["smoke", "--url"],
    &["db", "push", "--db-url"],
    // A global flag after the subcommand: still a flag, still wants its value.
    &["env", "check", "--workspace"],
    &["deploy", "logs", "--label"],
    &["deploy", "logs", "--no-wait=yes"],
    // Invalid values of enums and typed flags.
    &["env", "check", "--target", "staging"],
    &["env", "check", "--reader", "ci"],
    &["env", "check", "--reader", "build", "--reader", "builder"],
    &["env", "push", "--env-file", "x", "--target", "prod"],
    &["deploy", "--timeout", "5x"],
    &["deploy", "--timeout", "m"],
    &["deploy", "--verify-timeout", "-1s"],
    &["deploy", "rollback", "--timeout", "soon"],
    &["preview", "up", "--timeout", "5x"],
    &["preview", "gc", "--older-than", "yesterday"],
    &["preview", "gc", "--older-than", "3y"],
    &["preview", "gc", "--older-than", "-1d"],
    &["preview", "up", "--created-at", "soon"],
    &["preview", "up", "--created-at", "-1"],
    &["deploy", "list", "--limit", "many"],
    &["deploy", "logs", "--tail", "many"],
    &["deploy", "logs", "--tail", "-5"],
    &["deploy", "--verify-timeout", "1d"],
    &["base", "diff", "nonsense"],
    &["base", "diff", "has space"],
    // Conflicting and dependent flags.
    &["env", "check", "--service", "--reader", "build"],
    &["smoke", "--image", "a:b", "--url", "http://x"],
    &["preview", "up", "--image", "a:b"],
    &["deploy", "--dry-run", "status"],
    &["deploy", "status", "--dry-run"],
    // Flags given twice.
    &["--workspace", "a", "--workspace", "b"],
    &["seed", "--check", "--check"],
    &["deploy", "--target", "a", "--target", "b"],
    // Missing required arguments.
    &["migration", "new"],
    &["preview", "down"],
    &["base", "diff"],
    &["env", "push"],
    &["env", "push", "--dry-run"],
    // Arguments too many, or where none belong.
    &["migration", "new", "a", "b"],
    &["deploy", "rollback", "dep-1", "dep-2"],
    &["db", "url", "extra"],
    &["test", "filter"],
    &["up", "now"],
    // Help through the `help` subcommand.
    &["help"],
    &["help", "deploy"],
    &["help", "deploy", "logs"],
    &["help", "env", "check"],
];

/// What clap shows for `argv` (after `cargo xtask`): its rendered output with its kind, exit
/// code and stream, or that it parsed.
fn outcome(argv: &[&str]) -> String {
    let line = std::iter::once("cargo xtask").chain(argv.iter().copied());
    let mut out = format!("==== $ {}\n", line.clone().collect::<Vec<_>>().join(" "));
    match Xtask::try_parse_from(line) {
        Ok(_) => out.push_str("(parsed)\n"),
        Err(err) => {
            let stream = if err.use_stderr() { "stderr" } else { "stdout" };
            let _ = writeln!(
                out,
                "({:?}, exit {}, {stream})",
                err.kind(),
                err.exit_code()
            );
            out.push_str(&err.render().to_string());
        }
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// Every command's path below `cmd` (its own included), depth first in declaration order.
fn paths(cmd: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
    out.push(prefix.to_vec());
    // clap's `help` subcommand mirrors the tree beside it; `help` is taken as a command of each
    // group instead (`render`).
    for sub in cmd.get_subcommands().filter(|sub| sub.get_name() != "help") {
        let mut path = prefix.to_vec();
        path.push(sub.get_name().to_owned());
        paths(sub, &path, out);
    }
}

/// The command at `path` below `cmd`.
fn cmd_at<'a>(cmd: &'a clap::Command, path: &[String]) -> &'a clap::Command {
    path.iter().fold(cmd, |cmd, name| {
        cmd.find_subcommand(name)
            .unwrap_or_else(|| panic!("no subcommand {name}"))
    })
}

/// The golden file's text, from the command line as it is declared now.
fn render() -> String {
    let mut cmd = super::Xtask::command();
    cmd.build();
    let mut all = Vec::new();
    paths(&cmd, &[], &mut all);
    let mut out = String::from(
        "# Generated by `UPDATE_EXPECT=1 cargo test -p xtask --lib cli_output`, do not edit: what\n\
         # `cargo xtask` prints for its help, its version and bad command lines.\n\n",
    );
    out.push_str(&outcome(&["--version"]));
    out.push_str(&outcome(&["-V"]));
    for path in &all {
        for flag in ["--help", "-h"] {
            let mut argv: Vec<&str> = path.iter().map(String::as_str).collect();
            argv.push(flag);
            out.push_str(&outcome(&argv));
        }
        if cmd_at(&cmd, path).has_subcommands() {
            let mut argv: Vec<&str> = path.iter().map(String::as_str).collect();
            argv.push("help");
            out.push_str(&outcome(&argv));
        }
    }
    for argv in BAD {
        let text = outcome(argv);
        // A line that parses would pin nothing about errors.
        assert!(
            !text.ends_with("\n(parsed)\n"),
            "clap accepts `cargo xtask {}`, listed as a bad command line",
            argv.join(" ")
        );
        out.push_str(&text);
    }
    out
}

#[test]
fn cli_output_matches_the_golden_file() {
    let root = xtask_core::workspace::find_root().expect("the tests run inside the workspace");
    let path = root.join(GOLDEN);
    let actual = render();
    if std::env::var_os("UPDATE_EXPECT").is_some_and(|v| v == "1") {
        std::fs::write(&path, &actual).unwrap_or_else(|err| panic!("{GOLDEN}: {err}"));
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if actual != expected {
        // The command line whose output differs first, so the diff has a name.
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        let section = actual
            .lines()
            .take(first + 1)
            .filter(|line| line.starts_with("==== "))
            .last()
            .unwrap_or("(the header)");
        panic!(
            "{GOLDEN} is stale: the command line's help or errors changed, first in\n{section}\n{}\n\
             rerun with UPDATE_EXPECT=1 to accept the new output \
             (`UPDATE_EXPECT=1 cargo test -p xtask --lib cli_output`)",
            xtask_core::files::short_diff(&expected, &actual)
        );
    }
}
