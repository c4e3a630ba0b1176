//! `cargo lab bench compile`: what the first `cargo xtask` costs on a fresh clone. The working
//! tree and a reference commit are exported side by side; each runs `cargo xtask --version` in
//! a fresh target directory (the cold compile a user pays once), then again (cargo's no-op
//! check, paid on every command), then after a one-line edit to the file that holds the
//! `deploy` command (what someone changing xtask waits for). Cold runs alternate between the
//! trees, so a change in the machine's load falls on both.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, Result, bail};

use super::{Figure, fmt_secs, median, report, secs, timed};
use xtask_core::{files, process, progress, workspace::Workspace};

use crate::flags;

/// The goal for the cold compile (issue 11: "xtask's cold compile stays at or under 30 s").
const GOAL_COLD: f64 = 30.0;

impl flags::BenchCompile {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        if self.runs == 0 {
            bail!("--runs must be at least 1");
        }
        // A run killed earlier leaves its trees behind: start from an empty directory.
        let _ = std::fs::remove_dir_all(ws.scratch("bench-compile")?);
        let scratch = ws.scratch("bench-compile")?;
        let _cleanup = Scratch(scratch.clone());
        let ours = super::copy_repo(ws, &scratch.join("ours"))?;
        let reference = export(ws, &self.against, &scratch.join("reference"))?;
        let load_before = load_average();

        let mut cold = [Vec::new(), Vec::new()];
        let mut noop = [Vec::new(), Vec::new()];
        let mut edit = [Vec::new(), Vec::new()];
        let trees = [("ours", &ours), ("reference", &reference)];
        for run in 0..self.runs {
            // Alternate which tree goes first, so neither always meets the warmer page cache.
            let order = if run % 2 == 0 { [0, 1] } else { [1, 0] };
            for index in order {
                let (name, tree) = trees[index];
                let target = scratch.join(format!("target-{name}-{run}"));
                let step = progress::step(format!(
                    "run {}/{}: {name}, cold `cargo xtask --version`",
                    run + 1,
                    self.runs
                ));
                let took = timed(cargo_xtask(tree, &target))?;
                step.done_with(&fmt_secs(took));
                cold[index].push(took);
                noop[index].push(timed(cargo_xtask(tree, &target))?);
                let edited = append_comment(tree)?;
                let step = progress::step(format!(
                    "run {}/{}: {name}, rebuild after editing {}",
                    run + 1,
                    self.runs,
                    edited.strip_prefix(tree).unwrap_or(&edited).display()
                ));
                let took = timed(cargo_xtask(tree, &target))?;
                step.done_with(&fmt_secs(took));
                edit[index].push(took);
                // A cold run's target directory is about 0.3 GB: keep one at a time.
                std::fs::remove_dir_all(&target)
                    .with_context(|| format!("removing {}", target.display()))?;
            }
        }
        let load_after = load_average();

        let span = |times: &[Duration]| {
            let min = times.iter().min().copied().unwrap_or_default();
            let max = times.iter().max().copied().unwrap_or_default();
            if times.len() == 1 {
                fmt_secs(min)
            } else {
                format!("{}–{}", fmt_secs(min), fmt_secs(max))
            }
        };
        let against = format!("at {}", self.against);
        // `median` sorts in place, which leaves the spans' minimum and maximum as they were.
        let cold_median = cold.each_mut().map(|times| median(times));
        let noop_median = noop.each_mut().map(|times| median(times));
        let edit_median = edit.each_mut().map(|times| median(times));
        let figures = vec![
            Figure {
                name: "cold `cargo xtask` (fresh target dir)".into(),
                ours: span(&cold[0]),
                reference: format!("{} {against}", span(&cold[1])),
                ratio: Some(secs(cold_median[0]) / secs(cold_median[1])),
                ratio_is: "ours / reference (median)",
                goal: "<= 30 s",
                met: cold[0].iter().all(|t| t.as_secs_f64() <= GOAL_COLD),
            },
            Figure {
                name: "warm `cargo xtask`, nothing changed".into(),
                ours: fmt_secs(noop_median[0]),
                reference: format!("{} {against}", fmt_secs(noop_median[1])),
                ratio: None,
                ratio_is: "",
                goal: "report",
                met: true,
            },
            Figure {
                name: "rebuild after a one-line edit to deploy".into(),
                ours: span(&edit[0]),
                reference: format!("{} {against}", span(&edit[1])),
                ratio: Some(secs(edit_median[0]) / secs(edit_median[1])),
                ratio_is: "ours / reference (median)",
                goal: "report",
                met: true,
            },
            Figure {
                name: "load average (1 min), before / after".into(),
                ours: format!("{load_before} / {load_after}"),
                reference: "2 cores".into(),
                ratio: None,
                ratio_is: "",
                goal: "report",
                met: true,
            },
        ];
        report(&figures, self.json)
    }
}

/// `cargo xtask --version` in `tree`, as a user types it there, with `target` as the target
/// directory and without the network (every crate both trees need is in the cargo cache).
fn cargo_xtask(tree: &Path, target: &Path) -> std::process::Command {
    let mut cmd = process::command("cargo");
    cmd.args(["xtask", "--version"])
        .current_dir(tree)
        .env("CARGO_TARGET_DIR", target)
        .env("CARGO_NET_OFFLINE", "true")
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR");
    cmd
}

/// The files of commit `rev` in `dest` (`git archive`, so no worktree is left registered).
fn export(ws: &Workspace, rev: &str, dest: &Path) -> Result<PathBuf> {
    let step = progress::step(format!("exporting {rev}"));
    let sh = &ws.sh;
    let spec = format!("{rev}^{{commit}}");
    let commit = xshell::cmd!(sh, "git rev-parse --verify {spec}")
        .quiet()
        .ignore_stderr()
        .read()
        .with_context(|| format!("--against {rev}: not a commit of this repository"))?;
    let tar = dest.with_extension("tar");
    xshell::cmd!(sh, "git archive --format=tar --output={tar} {commit}")
        .quiet()
        .run()?;
    std::fs::create_dir_all(dest)?;
    xshell::cmd!(sh, "tar -xf {tar} -C {dest}").quiet().run()?;
    std::fs::remove_file(&tar)?;
    step.done();
    Ok(dest.to_path_buf())
}

/// Appends a comment to the file that holds the `deploy` command in `tree` (a `deploy.rs`
/// directly in a `src/` folder of xtask, wherever the tree keeps it); returns its path.
fn append_comment(tree: &Path) -> Result<PathBuf> {
    let file = find_command_file(&tree.join("xtask"), "deploy.rs")?
        .with_context(|| format!("no src/deploy.rs under {}/xtask", tree.display()))?;
    let mut text = std::fs::read_to_string(&file)?;
    text.push_str("\n// bench compile: a one-line edit\n");
    std::fs::write(&file, text)?;
    Ok(file)
}

fn find_command_file(dir: &Path, name: &str) -> Result<Option<PathBuf>> {
    let candidate = dir.join("src").join(name);
    if candidate.is_file() {
        return Ok(Some(candidate));
    }
    // Depth first in name order, as before: the first `src/<name>` below `dir`.
    let files = files::tree_files(dir, files::Links::Skip, |d| d.ends_with("target"))?;
    Ok(files.into_iter().find(|path| {
        path.file_name().is_some_and(|f| f == name)
            && path.parent().is_some_and(|p| p.ends_with("src"))
    }))
}

/// The 1-minute load average, as /proc/loadavg prints it.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// Removes the benchmark's scratch directory however the run ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
