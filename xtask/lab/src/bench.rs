//! `cargo lab bench …`: benchmarks that print figures measured side by side in one run, as
//! ratios, each next to its goal. Nothing here asserts a time; the figures are for people.
//! Every benchmark reports through one `Figure` type and one table (or `--json`) format.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde::Serialize;

pub mod api;
pub mod base;
pub mod compile;
pub mod deploy;
pub mod image;
pub mod preview;
pub mod seed;
pub mod smoke;

use xtask_core::{docker::Docker, process, progress, workspace::Workspace};

use crate::flags;

impl flags::BenchCommand {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        match self {
            flags::BenchCommand::Base(bench) => bench.run(ws),
            flags::BenchCommand::Api(bench) => bench.run(ws),
            flags::BenchCommand::Seed(bench) => bench.run(ws),
            flags::BenchCommand::Deploy(bench) => bench.run(ws),
            flags::BenchCommand::Smoke(bench) => bench.run(ws),
            flags::BenchCommand::Image(bench) => bench.run(ws),
            flags::BenchCommand::Preview(bench) => bench.run(ws),
            flags::BenchCommand::Compile(bench) => bench.run(ws),
        }
    }
}

/// The `cargo xtask` binary that the benchmarks measure: the tool of the checkout this lab was
/// built from, built first with the lab's own profile and target directory (a no-op when it is
/// current), so every figure is of the binary users run, never of the lab.
pub fn xtask_binary() -> Result<PathBuf> {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    if let Some(exe) = BUILT.get() {
        return Ok(exe.clone());
    }
    let lab = std::env::current_exe().context("finding the lab's binary")?;
    let profile_dir = lab.parent().context("the lab's binary has no directory")?;
    let target = profile_dir
        .parent()
        .context("the lab's binary is not in a target directory")?;
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(name) => name,
        None => bail!("{} names no cargo profile", profile_dir.display()),
    };
    let root = xtask_core::workspace::find_root()?;
    let step = progress::step(format!("building the xtask binary ({profile} profile)"));
    let status = process::command("cargo")
        .current_dir(&root)
        .args([
            "build",
            "--quiet",
            "--locked",
            "--package",
            "xtask",
            "--profile",
            profile,
        ])
        .arg("--target-dir")
        .arg(target)
        .status()
        .context("running cargo build for the xtask binary")?;
    if !status.success() {
        bail!("cargo build --package xtask failed in {}", root.display());
    }
    step.done();
    Ok(BUILT.get_or_init(|| profile_dir.join("xtask")).clone())
}

/// One figure: ours against a reference measured in the same run, and the goal it is judged by.
/// Also an element of `--json`, whose keys are in alphabetical order (`figure` is the name), the
/// order they have always been printed in.
#[derive(Serialize)]
pub struct Figure {
    #[serde(rename = "figure")]
    pub name: String,
    pub goal: &'static str,
    pub met: bool,
    pub ours: String,
    /// The ratio the goal is about, when there is one.
    pub ratio: Option<f64>,
    /// How to read `ratio`, e.g. "reference / ours".
    pub ratio_is: &'static str,
    pub reference: String,
}

/// Everything the benchmark creates carries this label; dropped, it removes them all.
pub struct Cleanup<'a> {
    pub docker: &'a Docker<'a>,
    pub label: String,
    pub registry: Option<std::process::Child>,
    pub scratch: PathBuf,
}

impl<'a> Cleanup<'a> {
    /// A cleanup of everything labelled `label` and of `scratch`, with no registry yet.
    pub fn new(docker: &'a Docker<'a>, label: String, scratch: PathBuf) -> Cleanup<'a> {
        Cleanup {
            docker,
            label,
            registry: None,
            scratch,
        }
    }

    /// Starts a private registry on a free loopback port, under the scratch directory, which
    /// the cleanup stops; returns its address.
    pub fn start_registry(&mut self) -> Result<String> {
        let registry = format!("127.0.0.1:{}", xtask_core::net::free_port()?);
        let step = progress::step(format!("starting a private registry on {registry}"));
        self.registry = Some(xtask_setup::setup::start_registry(
            &registry,
            &self.scratch.join("registry"),
            None,
        )?);
        step.done();
        Ok(registry)
    }
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if let Some(mut child) = self.registry.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Err(err) = self.docker.remove_labelled(&self.label) {
            progress::note(format!("cleanup of {} failed: {err:#}", self.label));
        }
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// The tracked and unignored files of the workspace copied to `dest` (no target/, no .git).
pub fn copy_repo(ws: &Workspace, dest: &Path) -> Result<PathBuf> {
    let step = progress::step("copying the workspace");
    let sh = &ws.sh;
    let files = xshell::cmd!(sh, "git ls-files --cached --others --exclude-standard")
        .quiet()
        .read()?;
    for file in files.lines() {
        let from = ws.root.join(file);
        if from.is_file() {
            let to = dest.join(file);
            std::fs::create_dir_all(to.parent().expect("has a parent"))?;
            std::fs::copy(&from, &to).with_context(|| format!("copying {file}"))?;
        }
    }
    step.done();
    Ok(dest.to_path_buf())
}

/// Prints `figures` as a table on stdout, or as a JSON array with `json`.
pub fn report(figures: &[Figure], json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(figures)?);
        return Ok(());
    }
    println!(
        "{:<48} {:>22} {:>22} {:>9}  {:<26} {:<22} met",
        "figure", "ours", "reference", "ratio", "ratio is", "goal"
    );
    for f in figures {
        let ratio = f
            .ratio
            .map_or_else(|| "-".to_owned(), |r| format!("{r:.2}"));
        println!(
            "{:<48} {:>22} {:>22} {:>9}  {:<26} {:<22} {}",
            f.name,
            f.ours,
            f.reference,
            ratio,
            f.ratio_is,
            f.goal,
            if f.met { "yes" } else { "NO" }
        );
    }
    Ok(())
}

/// Runs `cmd` to completion (output captured) and returns how long it took; fails if it fails.
pub fn timed(mut cmd: Command) -> Result<Duration> {
    let started = Instant::now();
    let out = cmd
        .output()
        .with_context(|| format!("running {:?}", cmd.get_program()))?;
    let elapsed = started.elapsed();
    if !out.status.success() {
        bail!(
            "{:?} {:?} failed:\n{}",
            cmd.get_program(),
            cmd.get_args().collect::<Vec<_>>(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(elapsed)
}

pub fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64().max(1e-6)
}

pub fn fmt_secs(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let mut odd = [3, 1, 2].map(Duration::from_secs);
        assert_eq!(median(&mut odd), Duration::from_secs(2));
        let mut even = [4, 1, 3, 2].map(Duration::from_secs);
        assert_eq!(median(&mut even), Duration::from_secs(3));
    }
}
