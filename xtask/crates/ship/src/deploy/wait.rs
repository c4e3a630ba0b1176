//! Waiting for a deploy to reach a terminal status: each change printed with its elapsed time,
//! the pace set by Render's rate-limit headers, a deadline (`--timeout`), and Ctrl-C, which
//! leaves the deploy running unless `--cancel-on-interrupt`. The wait claims SIGINT from
//! xtask-core's signals.rs for as long as it lasts, so Ctrl-C ends the wait, not the process.

use std::time::{Duration, Instant};

use anyhow::Result;

use xtask_core::signals::{self, Signal};

use super::{
    exit, fail,
    render::{Api, Deploy, Status},
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
