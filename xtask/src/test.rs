//! `cargo xtask test`: the README's test command. It first runs `setup` (so a fresh machine
//! needs nothing by hand), then the whole workspace's tests with real parts. Every test binary
//! runs even after a failure (`--no-fail-fast`: a failure must not hide `tidy` or the later
//! binaries), the output streams live, and the run ends with one line, `N passed, M failed`,
//! summed from the `test result:` line of each binary.

use std::{
    io::{BufRead, BufReader, Write},
    process::Stdio,
};

use anyhow::{Context, Result, bail};

use xtask_core::{process, progress, workspace::Workspace};

use xtask_setup::setup;

use crate::flags;

impl flags::Test {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        let step = progress::step("setup");
        setup::ensure(ws)?;
        step.done();
        let step = progress::step("cargo test --workspace --no-fail-fast");
        let mut cmd = process::command("cargo");
        cmd.args(["test", "--workspace", "--locked", "--no-fail-fast"])
            .args(&self.cargo_args)
            .current_dir(&ws.root)
            .stdout(Stdio::piped());
        let mut child = cmd.spawn().context("running cargo test")?;
        let mut totals = Totals::default();
        let stdout = child.stdout.take().expect("piped");
        let mut out = std::io::stdout().lock();
        for line in BufReader::new(stdout).split(b'\n') {
            let line = line.context("reading cargo test's output")?;
            out.write_all(&line)?;
            out.write_all(b"\n")?;
            out.flush()?;
            totals.add_line(&String::from_utf8_lossy(&line));
        }
        drop(out);
        let status = child.wait().context("waiting for cargo test")?;
        println!("{} passed, {} failed", totals.passed, totals.failed);
        if totals.failed > 0 || !status.success() {
            drop(step);
            bail!(
                "{} test(s) failed{}; the failures are listed above each `test result: FAILED` line",
                totals.failed,
                if status.success() || totals.failed > 0 {
                    String::new()
                } else {
                    format!(" and cargo test exited with {status} (a build error?)")
                }
            );
        }
        step.done_with(&format!(
            "{} passed, {} ignored",
            totals.passed, totals.ignored
        ));
        Ok(())
    }
}

/// The sum of the `test result:` lines seen so far.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub passed: u64,
    pub failed: u64,
    pub ignored: u64,
}

impl Totals {
    /// Adds `test result: ok. 12 passed; 1 failed; 0 ignored; …` to the totals; other lines are
    /// passed over.
    pub fn add_line(&mut self, line: &str) {
        let Some(rest) = line.trim_start().strip_prefix("test result: ") else {
            return;
        };
        let Some((_, counts)) = rest.split_once(". ") else {
            return;
        };
        for part in counts.split(';') {
            let mut words = part.split_whitespace();
            let (Some(n), Some(what)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            match what {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines_are_summed() {
        let mut totals = Totals::default();
        for line in [
            "running 3 tests",
            "test result: ok. 3 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s",
            "test tidy::x ... ok",
            "test result: FAILED. 10 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.2s",
            "test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s",
        ] {
            totals.add_line(line);
        }
        assert_eq!(
            totals,
            Totals {
                passed: 13,
                failed: 2,
                ignored: 1
            }
        );
    }
}
