//! Ctrl-C during a deploy's wait: the deploy goes on at Render, so xtask says so (and how to
//! follow it) and exits 130, or with `--cancel-on-interrupt` cancels it first. A flag set by a
//! SIGINT handler is polled by the wait loop; no dependency is needed for one signal.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_signal: i32) {
    // Only an atomic store: async-signal-safe.
    INTERRUPTED.store(true, Ordering::SeqCst);
}

unsafe extern "C" {
    /// `signal(2)` from the C library that std already links.
    fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
}

const SIGINT: i32 = 2;

/// Routes SIGINT to the flag instead of ending the process.
pub fn install() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe, and SIGINT is
    // 2 on every Unix this runs on.
    unsafe {
        signal(SIGINT, on_sigint);
    }
}

/// Whether Ctrl-C was pressed since `install`.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
