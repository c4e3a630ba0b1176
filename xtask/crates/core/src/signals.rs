//! SIGINT (Ctrl-C) and SIGTERM: this module is their one owner. It alone installs a handler
//! (libc's `signal(2)`; std links libc on every platform xtask runs on, so no crate is needed),
//! and whoever needs to know about an interrupt asks it.
//!
//! What a signal does:
//! - Until someone asks, nothing is installed and a signal ends the process as usual. `up`,
//!   `db reset` and most commands are written for that: what a killed one leaves is repaired by
//!   the next command (`down`, the sweep of dead owners' runs in owner.rs, `db reset`'s repair).
//! - [`on_signal`] registers a cleanup for as long as its guard lives. When a signal arrives
//!   that nobody claims, the watcher thread says so on stderr, runs the registered cleanups
//!   (newest first) and exits with 128 + the signal's number: 130 for SIGINT, 143 for SIGTERM,
//!   the codes a shell reports for a process the signal ended. smoke's stack (`smoke`, and
//!   deploy's smoke of the image it ships) is torn down this way before the process exits.
//! - [`claim`] makes a signal its holder's business for as long as the guard lives: the process
//!   goes on, and the holder asks [`Claim::received`] when it is ready to act. Deploy's wait for
//!   a terminal status claims SIGINT: Ctrl-C leaves the deploy running at Render, or cancels it
//!   with `--cancel-on-interrupt`, says which, and exits 130 through deploy's own error path.
//! - Once installed, a signal that arrives while nothing is registered or claimed exits at once
//!   with 128 + its number, as the default would have ended the process.
//!
//! A guard's request ends with the guard: a smoke run that is over tears nothing down again, and
//! a Ctrl-C after deploy's wait ends the process instead of being left for nobody.
//!
//! The handler only counts arrivals in atomics (async-signal-safe); the watcher, an ordinary
//! thread started with the handler, looks at the counts every 50 ms and does the rest.

use std::{
    sync::{
        Mutex, MutexGuard, Once, PoisonError,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

/// The signals this module owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT, Ctrl-C.
    Interrupt,
    /// SIGTERM, `kill` and `docker stop`.
    Terminate,
}

impl Signal {
    const ALL: [Signal; 2] = [Signal::Interrupt, Signal::Terminate];

    /// The signal's number, the same on every Unix xtask runs on.
    pub fn number(self) -> i32 {
        match self {
            Signal::Interrupt => 2,
            Signal::Terminate => 15,
        }
    }

    /// The exit code of a process that this signal ended: 128 + its number.
    pub fn exit_code(self) -> i32 {
        128 + self.number()
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How often the watcher looks at the counts.
const POLL: Duration = Duration::from_millis(50);

/// Arrivals of each signal, counted by the handler (in the order of [`Signal::ALL`]).
static RECEIVED: [AtomicU32; 2] = [AtomicU32::new(0), AtomicU32::new(0)];

extern "C" fn on_signal_arrival(signum: i32) {
    // Only an atomic add: the one kind of thing a signal handler may safely do here.
    let index = if signum == Signal::Interrupt.number() {
        Signal::Interrupt.index()
    } else {
        Signal::Terminate.index()
    };
    RECEIVED[index].fetch_add(1, Ordering::SeqCst);
}

unsafe extern "C" {
    /// libc's signal(2).
    fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
}

type Cleanup = Box<dyn Fn() + Send>;

/// What the guards asked for.
struct State {
    /// Live claims of each signal.
    claims: [usize; 2],
    /// Arrivals of each signal already dealt with (by a claim holder).
    handled: [u32; 2],
    /// Registered cleanups, oldest first, by guard id.
    cleanups: Vec<(u64, Cleanup)>,
    next_id: u64,
    /// A signal is ending the process: the watcher took the cleanups.
    ending: bool,
}

static STATE: Mutex<State> = Mutex::new(State {
    claims: [0; 2],
    handled: [0; 2],
    cleanups: Vec::new(),
    next_id: 0,
    ending: false,
});

fn state() -> MutexGuard<'static, State> {
    // A cleanup never runs under the lock, so a poisoned state is still consistent.
    STATE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Installs the handler for SIGINT and SIGTERM and starts the watcher, once per process.
fn install() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        // SAFETY: the handler is async-signal-safe (one atomic add) and lives for the program.
        unsafe {
            for s in Signal::ALL {
                signal(s.number(), on_signal_arrival);
            }
        }
        std::thread::Builder::new()
            .name("signals".to_owned())
            .spawn(watch)
            .expect("starting the signal watcher thread");
    });
}

/// The first signal that has arrived, is not claimed and was not handled by a claim holder.
fn unclaimed(state: &State) -> Option<Signal> {
    Signal::ALL.into_iter().find(|s| {
        state.claims[s.index()] == 0
            && RECEIVED[s.index()].load(Ordering::SeqCst) > state.handled[s.index()]
    })
}

fn watch() {
    loop {
        std::thread::sleep(POLL);
        let mut state = state();
        let Some(signal) = unclaimed(&state) else {
            continue;
        };
        state.ending = true;
        let cleanups = std::mem::take(&mut state.cleanups);
        drop(state);
        if !cleanups.is_empty() {
            eprintln!("signal {}: tearing down before exit", signal.number());
        }
        for (_, cleanup) in cleanups.iter().rev() {
            cleanup();
        }
        std::process::exit(signal.exit_code());
    }
}

/// A registered cleanup; dropping it unregisters the cleanup.
#[must_use = "the cleanup is unregistered when this guard is dropped"]
pub struct OnSignal {
    id: u64,
}

/// Runs `cleanup` when SIGINT or SIGTERM arrives unclaimed while the guard lives, then exits
/// with 128 + the signal's number. `cleanup` runs on the watcher thread, so it must not need
/// anything the interrupted thread holds.
pub fn on_signal(cleanup: impl Fn() + Send + 'static) -> OnSignal {
    install();
    let mut state = state();
    let id = state.next_id;
    state.next_id += 1;
    state.cleanups.push((id, Box::new(cleanup)));
    OnSignal { id }
}

impl Drop for OnSignal {
    fn drop(&mut self) {
        state().cleanups.retain(|(id, _)| *id != self.id);
    }
}

/// A claim of a signal: while it lives, the signal does not end the process.
#[must_use = "the signal is released when this guard is dropped"]
pub struct Claim {
    signal: Signal,
}

/// Claims `signal` for the caller, who asks [`Claim::received`] and acts on it.
pub fn claim(signal: Signal) -> Claim {
    install();
    state().claims[signal.index()] += 1;
    Claim { signal }
}

impl Claim {
    /// Whether the signal has arrived and not yet been handled; it counts as handled from
    /// now on, so it will not end the process after the claim is dropped.
    pub fn received(&self) -> bool {
        let mut state = state();
        let index = self.signal.index();
        let arrived = RECEIVED[index].load(Ordering::SeqCst);
        let new = arrived > state.handled[index];
        state.handled[index] = arrived;
        new
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        state().claims[self.signal.index()] -= 1;
    }
}

/// Blocks for good when a signal is ending the process: the watcher exits once its cleanups
/// are done. Code that would otherwise race them (a guard's Drop that tears down what the
/// cleanup tears down, and whose error would exit 1) calls this first. Returns at once when no
/// signal is ending the process.
pub fn await_exit() {
    let ending = {
        let state = state();
        state.ending || unclaimed(&state).is_some()
    };
    if ending {
        loop {
            std::thread::park();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `signal` to this process, as `kill` would.
    fn raise(signal: Signal) {
        unsafe extern "C" {
            fn raise(signum: i32) -> i32;
        }
        // SAFETY: raise(3) only delivers the signal; this process handles it (a claim is held).
        assert_eq!(unsafe { raise(signal.number()) }, 0);
    }

    // One test, because a signal reaches the whole test process: with SIGINT claimed, a
    // Ctrl-C is the claim's to see, once, and never ends the process; a cleanup guard that is
    // dropped is gone. (An unclaimed signal exits the process, so it is proven by the
    // integration tests of smoke and deploy, which signal a real xtask.)
    #[test]
    fn a_claimed_signal_is_reported_to_the_claim_and_ends_nothing() {
        // Were the watcher to act, it would exit the test process with 130: a failed run.
        let cleanup = on_signal(|| {});
        let claim = claim(Signal::Interrupt);
        assert!(!claim.received());
        raise(Signal::Interrupt);
        assert!(claim.received());
        assert!(!claim.received(), "reported once");
        // The watcher looks twice in this time and must leave the handled signal alone.
        std::thread::sleep(POLL * 3);
        await_exit();
        drop(cleanup);
        assert!(state().cleanups.is_empty());
        raise(Signal::Interrupt);
        assert!(claim.received());
        drop(claim);
        assert_eq!(state().claims, [0, 0]);
    }
}
