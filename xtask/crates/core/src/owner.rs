//! Runs that own Docker resources, and the cleanup that survives anything. A run (a smoke run,
//! a test's stack) labels every network, container and volume it creates with the managed
//! label, its run id, and its owner: the pid and that process's start time (field 22 of
//! /proc/<pid>/stat), so a recycled pid is not mistaken for the owner. The run tears down on
//! success, failure, Ctrl-C and SIGTERM (a cleanup registered with signals.rs); after a SIGKILL, the next `smoke`, `up` or `doctor`
//! calls [`sweep`], which removes the resources of runs whose owner is gone and never those of
//! a live run; a smoke run keeps sweeping every few seconds while it lives ([`Reaper`]).
//! Testcontainers' Ryuk is the model, without a daemon: the next run is the reaper.

use std::{
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use anyhow::{Context, Result};

use crate::docker::Docker;

pub const RUN_ID_LABEL: &str = "org.openeu.run-id";
pub const OWNER_PID_LABEL: &str = "org.openeu.owner-pid";
pub const OWNER_START_LABEL: &str = "org.openeu.owner-start";

/// A process's start time in clock ticks since boot (/proc/<pid>/stat field 22), or None when
/// there is no such process.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

/// Field 22 of a stat line. The command name (field 2) is in parentheses and may itself hold
/// spaces and parentheses, so the fields are counted after its last `)`.
fn parse_start_time(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    // `rest` starts at field 3 (the state).
    rest.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// Whether the process `pid` that started at `start` still runs.
pub fn alive(pid: u32, start: u64) -> bool {
    start_time(pid) == Some(start)
}

/// One run's identity: its id and its owner (this process).
#[derive(Debug, Clone)]
pub struct Run {
    pub id: String,
    pub pid: u32,
    pub start: u64,
}

impl Run {
    /// A new run owned by this process. `kind` starts the id (`smoke-…`).
    pub fn new(kind: &str) -> Result<Run> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let pid = std::process::id();
        let start = start_time(pid).context("reading /proc/self/stat for this run's owner")?;
        let id = format!(
            "{kind}-{pid:x}{start:x}{}",
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Ok(Run { id, pid, start })
    }

    /// KEY=VALUE labels for everything this run creates (with the workspace's `--label`s, see
    /// `Workspace::labels`).
    pub fn labels(&self) -> Vec<String> {
        vec![
            format!("{RUN_ID_LABEL}={}", self.id),
            format!("{OWNER_PID_LABEL}={}", self.pid),
            format!("{OWNER_START_LABEL}={}", self.start),
        ]
    }

    /// `label=…` filter value that finds this run's resources.
    pub fn filter(&self) -> String {
        format!("{RUN_ID_LABEL}={}", self.id)
    }

    /// Removes every container, network and volume of this run.
    pub fn teardown(&self, docker: &Docker<'_>) -> Result<()> {
        remove_run(docker, &self.id)
    }
}

fn remove_run(docker: &Docker<'_>, id: &str) -> Result<()> {
    let label = format!("{RUN_ID_LABEL}={id}");
    docker.remove_labelled_containers(&label)?;
    docker.remove_labelled_networks_and_volumes(&label)
}

/// Removes the resources of every run whose owner process is gone, and returns their run ids.
/// Resources of live runs, and managed resources without a run id (the `up` stack, images),
/// are never touched.
pub fn sweep(docker: &Docker<'_>) -> Result<Vec<String>> {
    let owners = docker
        .labelled_owners(&[RUN_ID_LABEL, OWNER_PID_LABEL, OWNER_START_LABEL])
        .context("listing the resources of xtask runs")?;
    let dead = dead_runs(&owners, alive);
    for id in &dead {
        remove_run(docker, id).with_context(|| format!("sweeping the leftovers of run {id}"))?;
    }
    Ok(dead)
}

/// The run ids among `owners` (run id, owner pid, owner start) whose owner is not alive.
/// Labels that do not parse are left alone: they are not ours to judge.
fn dead_runs(owners: &[Vec<String>], alive: impl Fn(u32, u64) -> bool) -> Vec<String> {
    let mut dead: Vec<String> = owners
        .iter()
        .filter_map(|labels| {
            let [id, pid, start] = labels.as_slice() else {
                return None;
            };
            let (pid, start) = (pid.parse().ok()?, start.parse().ok()?);
            (!id.is_empty() && !alive(pid, start)).then(|| id.clone())
        })
        .collect();
    dead.sort();
    dead.dedup();
    dead
}

/// Sweeps, reporting on stderr; a failure is a note, not an error, because a sweep is
/// housekeeping for the command that calls it.
pub fn sweep_quietly(docker: &Docker<'_>) {
    match sweep(docker) {
        Ok(swept) if !swept.is_empty() => crate::progress::note(format!(
            "swept the leftovers of {} run(s) whose owner is gone: {}",
            swept.len(),
            swept.join(", ")
        )),
        Ok(_) => {}
        Err(err) => crate::progress::note(format!("sweep skipped: {err:#}")),
    }
}

/// A sweep every `every` on a thread of its own for as long as this value lives: the reaper
/// of a run. A killed run's docker commands that were in flight may create a container after
/// a first sweep (its owner is dead by then, so the next pass takes it).
pub struct Reaper {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Reaper {
    /// Starts reaping for the workspace at `root` (its own shell: a workspace stays on its
    /// thread).
    pub fn start(root: std::path::PathBuf, every: Duration) -> Reaper {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let Ok(ws) = crate::workspace::Workspace::open(Some(root), Vec::new()) else {
                return;
            };
            let docker = Docker::new(&ws);
            while !flag.load(Ordering::SeqCst) {
                sweep_quietly(&docker);
                std::thread::park_timeout(every);
            }
        });
        Reaper {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_field_22_even_with_parentheses_in_the_name() {
        let stat =
            "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_start_time(stat), Some(987654));
        let me = std::process::id();
        assert!(start_time(me).is_some());
        assert!(alive(me, start_time(me).unwrap()));
        assert!(!alive(me, start_time(me).unwrap() + 1), "a recycled pid");
    }

    #[test]
    fn only_runs_with_a_dead_owner_are_swept() {
        let owners = vec![
            vec!["live".into(), "10".into(), "100".into()],
            vec!["dead".into(), "11".into(), "100".into()],
            vec!["dead".into(), "11".into(), "100".into()],
            vec!["recycled".into(), "10".into(), "99".into()],
            vec!["odd".into(), "x".into(), "1".into()],
        ];
        let alive = |pid, start| (pid, start) == (10, 100);
        assert_eq!(dead_runs(&owners, alive), ["dead", "recycled"]);
    }
}
