//! Waiting for a deploy to reach a terminal status: each change printed with its elapsed time,
//! the pace set by Render's rate-limit headers, a deadline (`--timeout`), and Ctrl-C, which
//! leaves the deploy running unless `--cancel-on-interrupt`. The wait claims SIGINT from
//! xtask-core's signals.rs for as long as it lasts, so Ctrl-C ends the wait, not the process.

use std::time::{Duration, Instant};

use anyhow::Result;

use super::{exit, fail};
use xtask_core::{
    render::{Api, Deploy, Status},
    signals::{self, Signal},
};

/// The fastest the wait polls; slower when the rate-limit headers ask for it.
const MIN_POLL: Duration = Duration::from_millis(250);

/// Polls `deploy` until a terminal status, printing each change with the elapsed time.
/// The pace follows the rate-limit headers; the deadline and Ctrl-C end the wait.
pub(super) fn wait_for(
    api: &Api,
    service: &str,
    deploy: &str,
    timeout: Duration,
    cancel_on_interrupt: bool,
) -> Result<Deploy> {
    let interrupt = signals::claim(Signal::Interrupt);
    let started = Instant::now();
    let mut last: Option<Status> = None;
    loop {
        let current = api.deploy(service, deploy)?;
        if last.as_ref() != Some(&current.status) {
            eprintln!(
                "    [{:>6.1}s] {deploy} {}",
                started.elapsed().as_secs_f64(),
                current.status
            );
            last = Some(current.status.clone());
        }
        if !current.status.in_progress() {
            return Ok(current);
        }
        if interrupt.received() {
            if cancel_on_interrupt {
                let canceled = api.cancel(service, deploy)?;
                return Err(fail(
                    exit::INTERRUPTED,
                    format!(
                        "interrupted: deploy {deploy} was canceled ({})",
                        canceled.status
                    ),
                ));
            }
            return Err(fail(
                exit::INTERRUPTED,
                format!(
                    "interrupted: deploy {deploy} continues on Render ({}); follow it with `cargo xtask deploy status`, or cancel it in the dashboard",
                    current.status
                ),
            ));
        }
        if started.elapsed() >= timeout {
            return Err(fail(
                exit::TIMEOUT,
                format!(
                    "deploy {deploy} is still {} after {:.0}s (--timeout); it goes on at Render: follow it with `cargo xtask deploy status` or `cargo xtask deploy logs --deploy {deploy}`",
                    current.status,
                    timeout.as_secs_f64()
                ),
            ));
        }
        std::thread::sleep(poll_interval(api));
    }
}

/// Why `done` is not live, one sentence for each terminal status. A canceled or deactivated
/// deploy names the newer deploy that replaced it (id, trigger, commit or image, status) when
/// Render's list has one: "ended canceled" alone leaves the reader guessing who did it.
pub(super) fn not_live(api: &Api, service: &str, done: &Deploy) -> String {
    let id = &done.id;
    let replaced_by = || -> Option<String> {
        let deploys = api.deploys(service, &[], 20).ok()?;
        let ours = deploys.iter().position(|d| d.id == *id)?;
        // The list is newest first: the one just above ours replaced it.
        let newer = deploys[..ours].last()?;
        Some(format!(
            "the newer deploy {} (trigger {}, {}; now {})",
            newer.id,
            newer.trigger.as_deref().unwrap_or("unknown"),
            newer.what(),
            newer.status
        ))
    };
    match &done.status {
        Status::BuildFailed => format!("deploy {id} failed to build (build_failed)"),
        Status::UpdateFailed => format!(
            "deploy {id} was built but did not start or pass Render's health check (update_failed)"
        ),
        Status::PreDeployFailed => {
            format!("deploy {id}'s pre-deploy command failed (pre_deploy_failed)")
        }
        Status::Canceled => match replaced_by() {
            Some(newer) => format!("deploy {id} was canceled: Render replaced it with {newer}"),
            None => format!(
                "deploy {id} was canceled on Render (in the dashboard or through the API); no newer deploy replaced it"
            ),
        },
        Status::Deactivated => match replaced_by() {
            Some(newer) => format!("deploy {id} was deactivated: {newer} replaced it"),
            None => format!("deploy {id} was deactivated before this tool saw it live"),
        },
        Status::Live => format!("deploy {id} is live"),
        other => format!("deploy {id} ended with status `{other}`, which this tool does not know"),
    }
}

/// The wait between polls: spread the remaining requests over the time to the reset, never
/// faster than [`MIN_POLL`], so a wait never exhausts the rate limit.
fn poll_interval(api: &Api) -> Duration {
    match api.rate.get() {
        Some((remaining, reset)) if remaining < 1_000 => {
            let share = reset / u32::try_from(remaining.max(1)).unwrap_or(u32::MAX);
            share.clamp(MIN_POLL, Duration::from_secs(10))
        }
        _ => MIN_POLL,
    }
}
