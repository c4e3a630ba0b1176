//! The per-stack lock: every command that changes a local stack (`up`, `down`, `db …`, and the
//! local steps of later commands) holds it, so two of them never interleave their docker and
//! database steps. It is `flock(2)` on a file in the state directory, named after the stack:
//! the kernel releases it when the holder exits, however it exits (SIGKILL included), so a
//! lock is never stale. The holder writes its pid and command line into the file, so a waiting
//! command can say whom it waits for.

use std::{
    fs::{File, OpenOptions, TryLockError},
    io::{Read, Seek, Write},
    path::PathBuf,
    time::Instant,
};

use anyhow::{Context, Result, bail};

use crate::{
    progress,
    workspace::{self, Workspace},
};

/// Held until dropped (or the process ends).
pub struct StackLock {
    _file: File,
}

/// The lock file of `stack`, in the machine-wide state directory: two checkouts that share a
/// stack name share the docker names, so they must share the lock too.
pub fn path(stack: &str) -> Result<PathBuf> {
    let dir = workspace::state_dir()?.join("locks");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir.join(format!("stack-{stack}.lock")))
}

/// Takes the lock of the workspace's stack for `what` (e.g. "up"). When another command holds
/// it, waits and says so, or with `--no-wait` fails naming the holder.
pub fn stack(ws: &Workspace, what: &str) -> Result<StackLock> {
    named(ws, &ws.config.stack, what)
}

/// As [`stack`], for a stack of another name (a branch's preview).
pub fn named(ws: &Workspace, stack: &str, what: &str) -> Result<StackLock> {
    let path = path(stack)?;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening the lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let holder = holder(&mut file);
            if ws.no_wait {
                bail!(
                    "the local stack `{stack}` is busy: {holder} holds its lock ({}); run again when it is done, or without --no-wait to wait for it",
                    path.display()
                );
            }
            progress::note(format!(
                "waiting for the local stack `{stack}`: {holder} holds its lock (--no-wait refuses instead)"
            ));
            let started = Instant::now();
            file.lock()
                .with_context(|| format!("waiting for the lock {}", path.display()))?;
            progress::note(format!(
                "got the lock of `{stack}` after {:.1}s",
                started.elapsed().as_secs_f64()
            ));
        }
        Err(TryLockError::Error(err)) => {
            return Err(err).with_context(|| format!("locking {}", path.display()));
        }
    }
    // Who holds it now, for the next one who waits. Best effort: the lock is the flock.
    // Only the command's name: its arguments may hold a URL with a password.
    let _ = file.set_len(0).and_then(|()| {
        file.rewind()?;
        writeln!(file, "pid {} (cargo xtask {what})", std::process::id())
    });
    Ok(StackLock { _file: file })
}

/// What the holder wrote about itself.
fn holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.rewind().and_then(|()| file.read_to_string(&mut text));
    let text = text.trim();
    if text.is_empty() {
        "another command".to_owned()
    } else {
        text.to_owned()
    }
}
