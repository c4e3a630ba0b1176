//! Private docker client configs for a registry login (`docker --config DIR login`), kept where
//! they do not outlive the machine's uptime and are swept when their owner is gone.
//!
//! The config's `auth` is base64 of user:password, so it must not survive a killed push. It
//! lives in a 0700 directory on a RAM filesystem (`$XDG_RUNTIME_DIR`, else `/dev/shm`), never
//! under target/, and is named after its owner: `push-<pid>-<start time>` (the start time from
//! /proc, so a reused pid is not mistaken for the owner). A normal exit deletes it; after a
//! SIGKILL, the next xtask command (any command: `sweep` is one readdir when nothing is left)
//! deletes every config whose owner process is gone.

use std::{
    fs::DirBuilder,
    os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};

const PREFIX: &str = "push-";

/// A private client config directory, deleted on drop.
pub struct PrivateConfig {
    dir: PathBuf,
}

impl PrivateConfig {
    /// A fresh 0700 directory owned by this process.
    pub fn create() -> Result<PrivateConfig> {
        let base = base_dir()?;
        let pid = std::process::id();
        let start = start_time(pid).context("reading this process's start time from /proc")?;
        let dir = base.join(format!("{PREFIX}{pid}-{start}"));
        let _ = std::fs::remove_dir_all(&dir);
        DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        Ok(PrivateConfig { dir })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for PrivateConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Where private configs live: a per-user 0700 directory on a RAM filesystem when there is one.
pub fn base_dir() -> Result<PathBuf> {
    let uid = std::fs::metadata("/proc/self")
        .context("reading /proc/self")?
        .uid();
    let runtime = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_absolute() && d.is_dir());
    let base = match runtime {
        Some(dir) => dir.join("openeu-xtask"),
        None if Path::new("/dev/shm").is_dir() => {
            PathBuf::from(format!("/dev/shm/openeu-xtask-{uid}"))
        }
        None => std::env::temp_dir().join(format!("openeu-xtask-{uid}")),
    };
    match DirBuilder::new().mode(0o700).create(&base) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(err).with_context(|| format!("creating {}", base.display())),
    }
    // Someone else's directory (a shared /dev/shm) or one others can read is refused.
    let meta =
        std::fs::symlink_metadata(&base).with_context(|| format!("reading {}", base.display()))?;
    if !meta.is_dir() || meta.uid() != uid {
        bail!(
            "{} is not a directory owned by this user; remove it so a private one can be made",
            base.display()
        );
    }
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("making {} private", base.display()))?;
    }
    Ok(base)
}

/// Deletes every private config whose owner process is gone. Errors are ignored: a sweep must
/// never stop the command that runs it.
pub fn sweep() {
    if let Ok(base) = base_dir() {
        sweep_dir(&base);
    }
}

/// Deletes the `push-<pid>-<start>` directories of `dir` whose owner is gone.
pub fn sweep_dir(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
            continue;
        };
        let alive = match owner.split_once('-') {
            Some((pid, start)) => pid
                .parse::<u32>()
                .ok()
                .and_then(start_time)
                .is_some_and(|s| s.to_string() == start),
            // The older `push-<pid>` form under target/: the pid alone.
            None => owner
                .parse::<u32>()
                .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists()),
        };
        if !alive {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A process's start time (clock ticks since boot, field 22 of /proc/PID/stat), None when the
/// process does not exist.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_configs_of_dead_owners_are_swept() {
        let dir = std::env::temp_dir().join(format!("xtask-sweep-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let me = std::process::id();
        let mine = dir.join(format!("{PREFIX}{me}-{}", start_time(me).unwrap()));
        let reused = dir.join(format!("{PREFIX}{me}-1"));
        let dead = dir.join(format!("{PREFIX}{}-5", u32::MAX - 1));
        let other = dir.join("unrelated");
        for d in [&mine, &reused, &dead, &other] {
            std::fs::create_dir_all(d).unwrap();
        }
        sweep_dir(&dir);
        assert!(mine.exists() && other.exists());
        assert!(!reused.exists(), "a reused pid is not the owner");
        assert!(!dead.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
