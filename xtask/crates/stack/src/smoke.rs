//! `cargo xtask smoke`: the declared checks of smoke.toml, judged against openapi.json, run
//! against a fresh isolated stack of the current image (built hash-gated), of `--image REF`,
//! or (read-only checks only) against a running deployment at `--url URL`. A local stack also
//! gets the checks only a container allows (smoke/local.rs). The report is a table, `--json`
//! or `--junit FILE`; the exit code is non-zero when a check fails. The stack is torn down in
//! every case: on return, on error, on Ctrl-C and SIGTERM; after a SIGKILL the next run sweeps
//! it (owner.rs).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub mod checks;
pub mod client;
pub mod jwt;
pub mod local;
pub mod pattern;
pub mod report;
pub mod runner;
pub mod schema;

use xtask_core::{
    docker::Docker,
    owner::{self, Run},
    progress, signals,
    workspace::{self, Workspace},
};
use xtask_images::image;
use xtask_setup::setup;

use crate::flags;

use self::{
    checks::{READ_ONLY, SEEDED},
    client::Base,
    report::{Outcome, Summary},
    schema::Contract,
};

impl flags::Smoke {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        let started = Instant::now();
        let file = load_checks(ws)?;
        let contract = load_contract(ws)?;
        let (target, outcomes) = match &self.url {
            Some(url) => (url.clone(), against_url(url, &file, &contract)?),
            None => {
                let (image, outcomes) = against_local(ws, self.image.as_deref(), &file, &contract)?;
                (image, outcomes)
            }
        };
        let summary = Summary {
            target: &target,
            outcomes: &outcomes,
            elapsed: started.elapsed(),
        };
        if let Some(path) = &self.junit {
            summary.write_junit(path)?;
        }
        if self.json {
            println!("{}", serde_json::to_string_pretty(&summary.json())?);
        } else {
            print!("{}", summary.table());
        }
        if !summary.passed() {
            bail!("{}", summary.line());
        }
        Ok(())
    }
}

pub fn load_checks(ws: &Workspace) -> Result<checks::File> {
    let path = ws.path(workspace::SMOKE_CHECKS);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    checks::File::parse(&text, &path.display().to_string())
}

pub fn load_contract(ws: &Workspace) -> Result<Contract> {
    let path = ws.path(workspace::OPENAPI);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Contract::parse(&text).with_context(|| path.display().to_string())
}

/// Deploy's verification of a live URL: the read-only checks; on a failure the report goes to
/// stderr and the error names how many failed.
pub fn verify_url(ws: &Workspace, url: &str) -> Result<()> {
    let started = Instant::now();
    let file = load_checks(ws)?;
    let contract = load_contract(ws)?;
    let outcomes = against_url(url, &file, &contract)?;
    judge(url, &outcomes, started)
}

/// Deploy's test of the image it is about to ship: every check against a fresh local stack.
pub fn verify_image(ws: &Workspace, image: &str) -> Result<()> {
    let started = Instant::now();
    let file = load_checks(ws)?;
    let contract = load_contract(ws)?;
    let (target, outcomes) = against_local(ws, Some(image), &file, &contract)?;
    judge(&target, &outcomes, started)
}

fn judge(target: &str, outcomes: &[Outcome], started: Instant) -> Result<()> {
    let summary = Summary {
        target,
        outcomes,
        elapsed: started.elapsed(),
    };
    if !summary.passed() {
        eprint!("{}", summary.table());
        bail!("smoke checks of {target}: {}", summary.line());
    }
    progress::note(summary.line());
    Ok(())
}

/// The read-only checks against a running deployment.
fn against_url(url: &str, file: &checks::File, contract: &Contract) -> Result<Vec<Outcome>> {
    let base = Base::new(url)?;
    let step = progress::step(format!("read-only checks against {url}"));
    let target = runner::Target {
        base: &base,
        contract,
        secret: None,
        user: &file.user,
    };
    let outcomes = runner::run_all(&file.checks, &target, |check| {
        (!check.is(READ_ONLY))
            .then(|| format!("not read-only (tagged {SEEDED}); --url runs read-only checks"))
    });
    step.done();
    Ok(outcomes)
}

/// Every check against a fresh isolated stack of `image` (default: the current image, built).
fn against_local(
    ws: &Workspace,
    image: Option<&str>,
    file: &checks::File,
    contract: &Contract,
) -> Result<(String, Vec<Outcome>)> {
    let step = progress::step("setup");
    setup::ensure(ws)?;
    step.done();
    let docker = Docker::new(ws);
    // Sweeps now and every two seconds while this run lives.
    let _reaper = owner::Reaper::start(ws.root.clone(), Duration::from_secs(2));
    let image = match image {
        Some(reference) => reference.to_owned(),
        None => image::build(ws, &docker)?.image,
    };
    let run = Run::new("smoke")?;
    let run_ws = local::run_workspace(ws, &run)?;
    // Teardown on every path out: the guard on return and error, the signal watcher on SIGINT
    // and SIGTERM (registered first, so it is dropped last: a signal during the guard's
    // teardown still tears down before exit), the next run's sweep after a SIGKILL.
    let _on_signal = {
        let root = ws.root.clone();
        let run = run.clone();
        signals::on_signal(move || {
            if let Ok(ws) = Workspace::open(Some(root.clone()), Vec::new()) {
                // A docker command in flight when the signal came may create its container
                // after the first pass; once the network is gone no new one can join, so a
                // few passes catch it (and the next run's sweep whatever still slips by).
                for _ in 0..3 {
                    let _ = run.teardown(&Docker::new(&ws));
                }
            }
        })
    };
    let _guard = Teardown { ws, run: &run };
    let stack = local::start(run_ws, &run, &image)?;
    let base = Base::new(&stack.url)?;
    let step = progress::step(format!(
        "{} checks against {} ({})",
        file.checks.len() + 4,
        stack.url,
        run.id
    ));
    let target = runner::Target {
        base: &base,
        contract,
        secret: Some(&stack.secret),
        user: &file.user,
    };
    // The stack's workspace holds a shell, which stays on this thread; the HTTP checks run on
    // their own threads meanwhile.
    let (mut outcomes, passive) = std::thread::scope(|scope| {
        let outcomes = scope.spawn(|| runner::run_all(&file.checks, &target, |_| None));
        let passive = local::passive_checks(&stack);
        (outcomes.join().unwrap_or_default(), passive)
    });
    outcomes.extend(passive);
    outcomes.extend(local::disruptive_checks(&stack));
    step.done();
    Ok((image, outcomes))
}

/// Removes the run's resources when dropped.
struct Teardown<'a> {
    ws: &'a Workspace,
    run: &'a Run,
}

impl Drop for Teardown<'_> {
    fn drop(&mut self) {
        // On Ctrl-C or SIGTERM the signal watcher tears down and exits 128 + the signal.
        signals::await_exit();
        let step = progress::step(format!("tearing down {}", self.run.id));
        match self.run.teardown(&Docker::new(self.ws)) {
            Ok(()) => step.done(),
            Err(err) => progress::note(format!(
                "teardown of {} failed ({err:#}); the next `cargo xtask smoke`, `up` or `doctor` sweeps it",
                self.run.id
            )),
        }
    }
}
