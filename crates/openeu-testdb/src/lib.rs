//! Throwaway `PostgreSQL` 15 servers (Debian's postgresql-15) on random loopback ports, for the
//! service's tests and `cargo xtask bench api`. A server starts from a template data directory
//! that has the given SQL files applied; templates are cached under /tmp by the files' content,
//! so each server costs a directory copy and a start, about a second less than initdb.
//! Servers run as the `postgres` user when we are root, because `PostgreSQL` refuses root.

use std::{
    collections::hash_map::DefaultHasher,
    hash::{Hash, Hasher},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A command run as the postgres user when we are root (`PostgreSQL` refuses to run as root).
fn as_postgres(program: &str) -> Command {
    if is_root() {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--clear-groups",
            "--",
        ])
        .arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn chown_postgres(path: &Path) {
    if is_root() {
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// psql against `port` as postgres, stopping at the first error; add what to run.
pub fn psql_command(port: u16) -> Command {
    let mut cmd = Command::new("psql");
    cmd.args([
        "-X",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        "127.0.0.1",
        "-U",
        "postgres",
        "-d",
        "postgres",
        "-p",
    ])
    .arg(port.to_string());
    cmd
}

/// Runs SQL with psql against `port`; returns unaligned, tuples-only output.
pub fn psql(port: u16, sql: &str) -> String {
    let out = psql_command(port)
        .args(["-At", "-c", sql])
        .output()
        .expect("psql is installed");
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Runs a SQL file with psql in one transaction, stopping at the first error.
pub fn psql_file(port: u16, file: &Path) {
    try_psql_file(port, file).unwrap_or_else(|why| panic!("{why}"));
}

/// Runs a SQL file with psql in one transaction, stopping at the first error; the error is
/// psql's, which names the file and the line.
pub fn try_psql_file(port: u16, file: &Path) -> Result<(), String> {
    let out = psql_command(port)
        .args(["-q", "--single-transaction", "-f"])
        .arg(file)
        .output()
        .map_err(|e| format!("running psql (install postgresql-15): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// What a migrated Supabase database is made of, in order: the compatibility bootstrap of
/// `root`/supabase/local, then its migrations by timestamp.
pub fn supabase_schema(root: &Path) -> Vec<PathBuf> {
    let mut files = vec![root.join("supabase/local/supabase-compat.sql")];
    let mut migrations: Vec<PathBuf> = std::fs::read_dir(root.join("supabase/migrations"))
        .expect("supabase/migrations exists")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    migrations.sort();
    files.extend(migrations);
    files
}

/// Where templates and server directories live.
fn base_dir() -> PathBuf {
    PathBuf::from("/tmp/openeu-testdb")
}

/// A data directory with `files` and then `extra_sql` applied, each file in one transaction;
/// cached by their content. A file that fails is an error (psql's, with the file and line);
/// the half-built directory is removed.
fn template(files: &[PathBuf], extra_sql: &str) -> Result<PathBuf, String> {
    let mut hasher = DefaultHasher::new();
    for file in files {
        std::fs::read(file)
            .map_err(|e| format!("{}: {e}", file.display()))?
            .hash(&mut hasher);
    }
    extra_sql.hash(&mut hasher);
    let base = base_dir();
    std::fs::create_dir_all(&base).unwrap();
    let dir = base.join(format!("template-{:016x}", hasher.finish()));
    if dir.join("PG_VERSION").exists() {
        return Ok(dir);
    }
    let building = base.join(format!("building-{}-{}", std::process::id(), free_port()));
    let _ = std::fs::remove_dir_all(&building);
    std::fs::create_dir_all(&building).unwrap();
    // Only this process's directory: other processes build and rename theirs concurrently
    // under the same base, and the base itself only needs to be traversable.
    chown_postgres(&building);
    let out = as_postgres(&format!("{PG_BIN}/initdb"))
        .arg("-D")
        .arg(&building)
        .args([
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ])
        .output()
        .map_err(|e| {
            format!(
                "{PG_BIN}/initdb does not run (install postgresql-15: `cargo xtask setup`): {e}"
            )
        })?;
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(&building);
        return Err(format!("initdb: {}", String::from_utf8_lossy(&out.stderr)));
    }
    let applied = {
        let server = Server::start_in(&building, false);
        files
            .iter()
            .try_for_each(|file| try_psql_file(server.port, file))
            .map(|()| {
                if !extra_sql.is_empty() {
                    psql(server.port, extra_sql);
                }
            })
    };
    if let Err(why) = applied {
        let _ = std::fs::remove_dir_all(&building);
        return Err(why);
    }
    // Another process may have finished the same template meanwhile: either copy is fine.
    if std::fs::rename(&building, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&building);
    }
    Ok(dir)
}

/// A running `PostgreSQL`, stopped and (when it is a copy) deleted on drop.
pub struct Server {
    pub port: u16,
    child: Child,
    dir: PathBuf,
    delete: bool,
}

impl Server {
    /// A server with `files` and then `extra_sql` applied, on a free loopback port, in a fresh
    /// copy of the cached template.
    pub fn start(files: &[PathBuf], extra_sql: &str) -> Server {
        Server::try_start(files, extra_sql).unwrap_or_else(|why| panic!("{why}"))
    }

    /// As [`Server::start`], but a file that fails to apply is an error (psql's message, which
    /// names the file and the line) instead of a panic: for tools, not tests.
    pub fn try_start(files: &[PathBuf], extra_sql: &str) -> Result<Server, String> {
        let template = template(files, extra_sql)?;
        let dir = base_dir().join(format!("pg-{}-{}", std::process::id(), free_port()));
        let status = Command::new("cp")
            .arg("-a")
            .arg(&template)
            .arg(&dir)
            .status()
            .unwrap();
        assert!(status.success());
        let _ = std::fs::remove_file(dir.join("postmaster.pid"));
        Ok(Server::start_in(&dir, true))
    }

    fn start_in(dir: &Path, delete: bool) -> Server {
        let port = free_port();
        let child = as_postgres(&format!("{PG_BIN}/postgres"))
            .arg("-D")
            .arg(dir)
            .args([
                "-p",
                &port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
            ])
            .arg(format!("unix_socket_directories={}", dir.display()))
            .args([
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "synchronous_commit=off",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server {
            port,
            child,
            dir: dir.to_path_buf(),
            delete,
        };
        wait_until(
            "postgres to accept connections",
            Duration::from_secs(30),
            || {
                psql_command(port)
                    .args(["-At", "-c", "select 1"])
                    .output()
                    .is_ok_and(|o| o.status.success())
            },
        );
        server
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn stop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        // SIGINT is PostgreSQL's fast shutdown.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        if self.delete {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
