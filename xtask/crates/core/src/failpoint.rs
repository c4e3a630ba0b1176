//! Failpoints: named steps where a test can make xtask die as if killed, so recovery is proven
//! deterministically instead of by a lucky `kill` timing. `XTASK_FAILPOINT=db-reset:after-rename`
//! (several names may be separated by commas) makes the process abort (SIGABRT, no unwinding,
//! no destructors, no cleanup: what a SIGKILL leaves) when it reaches that point.
//!
//! Each point is named where it is hit; `POINTS` lists them all so tests can iterate.

use std::sync::OnceLock;

/// The environment variable a test sets.
pub const VAR: &str = "XTASK_FAILPOINT";

/// Every failpoint, in the order a command reaches them.
pub const POINTS: &[&str] = &[
    "db-reset:after-create-next",
    "db-reset:after-apply",
    "db-reset:after-drop-previous",
    "db-reset:after-rename-old",
    "db-reset:after-swap",
    "base-push:after-login",
    "up:after-database",
    "preview-up:after-network",
    "preview-up:after-database",
];

/// Aborts the process when `XTASK_FAILPOINT` names `point`; otherwise does nothing.
pub fn hit(point: &str) {
    debug_assert!(
        POINTS.contains(&point),
        "failpoint {point} is not in POINTS"
    );
    static ARMED: OnceLock<Vec<String>> = OnceLock::new();
    let armed = ARMED.get_or_init(|| {
        std::env::var(VAR)
            .map(|v| v.split(',').map(|p| p.trim().to_owned()).collect())
            .unwrap_or_default()
    });
    if armed.iter().any(|p| p == point) {
        eprintln!("failpoint {point}: aborting as if killed");
        std::process::abort();
    }
}
