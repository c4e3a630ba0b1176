//! Progress on stderr: each step says when it starts and how long it took. Results go to stdout
//! and are printed by the tasks themselves.

use std::time::Instant;

pub struct Step {
    name: String,
    started: Instant,
    finished: bool,
}

/// Announces a step; call `done` when it succeeds. A step dropped without `done` reports failure.
pub fn step(name: impl Into<String>) -> Step {
    let name = name.into();
    eprintln!("==> {name}");
    Step {
        name,
        started: Instant::now(),
        finished: false,
    }
}

impl Step {
    pub fn done(mut self) {
        self.finished = true;
        eprintln!(
            "    {} done in {:.1}s",
            self.name,
            self.started.elapsed().as_secs_f64()
        );
    }

    /// Finishes the step with a note instead of "done", e.g. "skipped: already present".
    pub fn done_with(mut self, note: &str) {
        self.finished = true;
        eprintln!(
            "    {}: {note} ({:.1}s)",
            self.name,
            self.started.elapsed().as_secs_f64()
        );
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        if !self.finished {
            eprintln!(
                "    {} failed after {:.1}s",
                self.name,
                self.started.elapsed().as_secs_f64()
            );
        }
    }
}

/// A line of progress that is not a step.
pub fn note(message: impl std::fmt::Display) {
    eprintln!("    {message}");
}
