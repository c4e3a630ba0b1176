//! Throwaway PostgreSQL 15 servers (Debian's postgresql-15) on random loopback ports, for the
//! service's tests and `cargo lab bench api`. A server starts from a template data directory
//! that has the given SQL files applied; templates are cached under /tmp by the files' content,
//! so each server costs a directory copy and a start, about a second less than initdb.
//! Servers run as the `postgres` user when we are root, because PostgreSQL refuses root.
//!
//! Asked for TLS ([`Server::start_tls`]), a server gets a certificate from a CA made for it
//! with the `openssl` command line, `ssl = on`, and `hostssl`-only rules in its pg_hba, so a
//! plaintext TCP connection is refused. [`Pgbouncer`] puts Debian's pgbouncer in front of a
//! server, in the pool mode asked for.

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

/// A command run as the postgres user when we are root (PostgreSQL refuses to run as root).
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
        let server = Server::start_in(&building, false, None);
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

/// A running PostgreSQL, stopped and (when it is a copy) deleted on drop.
pub struct Server {
    pub port: u16,
    child: Child,
    dir: PathBuf,
    delete: bool,
    tls: Option<Tls>,
}

/// The name the test server's certificate carries, besides 127.0.0.1.
pub const TLS_HOST: &str = "db.openeu.test";

/// A test CA and a server certificate it signed, for [`TLS_HOST`] and 127.0.0.1, as PEM files
/// in `dir`.
#[derive(Debug, Clone)]
pub struct Tls {
    pub dir: PathBuf,
    /// The CA certificate: what a client's `sslrootcert` points at.
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Tls {
    /// Makes a fresh CA and a server certificate under `dir` (created), with openssl.
    pub fn generate(dir: &Path) -> Tls {
        std::fs::create_dir_all(dir).unwrap();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("the openssl command line is installed");
            assert!(
                out.status.success(),
                "openssl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509", "-days", "2", "-subj", "/CN=openeu test CA"];
        ca.extend(ec);
        ca.extend([
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(&ca);
        let mut csr = vec!["req", "-subj", "/CN=db.openeu.test"];
        csr.extend(ec);
        csr.extend(["-keyout", "server.key", "-out", "server.csr"]);
        openssl(&csr);
        std::fs::write(
            dir.join("server.ext"),
            format!(
                "subjectAltName=DNS:{TLS_HOST},IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
            ),
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ]);
        use std::os::unix::fs::PermissionsExt;
        // PostgreSQL refuses a key that others can read.
        std::fs::set_permissions(
            dir.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        Tls {
            dir: dir.to_path_buf(),
            ca: dir.join("ca.crt"),
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
        }
    }
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
        Server::start_copy(files, extra_sql, false)
    }

    /// Like [`Server::start`], with `ssl = on` and a certificate of a fresh test CA (see
    /// [`Server::tls`]); its pg_hba accepts TCP connections only over TLS.
    pub fn start_tls(files: &[PathBuf], extra_sql: &str) -> Server {
        Server::start_copy(files, extra_sql, true).unwrap_or_else(|why| panic!("{why}"))
    }

    fn start_copy(files: &[PathBuf], extra_sql: &str, tls: bool) -> Result<Server, String> {
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
        let tls = tls.then(|| {
            let tls = Tls::generate(&dir.join("tls"));
            // Local (Unix socket) connections stay open for the harness; TCP needs TLS.
            std::fs::write(
                dir.join("pg_hba.conf"),
                "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostssl all all ::1/128 trust\n",
            )
            .unwrap();
            chown_postgres(&dir);
            tls
        });
        Ok(Server::start_in(&dir, true, tls))
    }

    fn start_in(dir: &Path, delete: bool, tls: Option<Tls>) -> Server {
        let port = free_port();
        let mut command = as_postgres(&format!("{PG_BIN}/postgres"));
        if let Some(tls) = &tls {
            command
                .args(["-c", "ssl=on", "-c"])
                .arg(format!("ssl_cert_file={}", tls.cert.display()))
                .arg("-c")
                .arg(format!("ssl_key_file={}", tls.key.display()));
        }
        let child = command
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
            tls,
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

    /// The test CA and certificate of a server started with [`Server::start_tls`].
    pub fn tls(&self) -> Option<&Tls> {
        self.tls.as_ref()
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

/// Debian's pgbouncer in front of a [`Server`], on its own loopback port, trusting every
/// client (the server behind it trusts them too). Stopped and deleted on drop.
pub struct Pgbouncer {
    pub port: u16,
    child: Child,
    dir: PathBuf,
}

/// Where Debian's package puts the binary (outside a non-root PATH).
const PGBOUNCER: &str = "/usr/sbin/pgbouncer";

impl Pgbouncer {
    /// pgbouncer with `pool_mode` (`session` or `transaction`) in front of `server`'s
    /// `postgres` database. Startup parameters it does not know are refused, as Supabase's
    /// pooler refuses them: `options` above all.
    pub fn start(server: &Server, pool_mode: &str) -> Pgbouncer {
        let program = if Path::new(PGBOUNCER).exists() {
            PGBOUNCER
        } else {
            "pgbouncer"
        };
        let port = free_port();
        let dir = base_dir().join(format!("pgbouncer-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("userlist.txt"), "\"postgres\" \"\"\n").unwrap();
        // The server's TLS-only rules apply to pgbouncer's connections too.
        let server_tls = if server.tls().is_some() {
            "server_tls_sslmode = require\n"
        } else {
            ""
        };
        std::fs::write(
            dir.join("pgbouncer.ini"),
            format!(
                "[databases]\npostgres = host=127.0.0.1 port={} dbname=postgres\n\n\
                 [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
                 auth_type = trust\nauth_file = {}\npool_mode = {pool_mode}\n\
                 max_client_conn = 500\ndefault_pool_size = 20\n{server_tls}\
                 logfile = {}\n",
                server.port,
                dir.join("userlist.txt").display(),
                dir.join("pgbouncer.log").display(),
            ),
        )
        .unwrap();
        chown_postgres(&dir);
        let child = as_postgres(program)
            .arg(dir.join("pgbouncer.ini"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pgbouncer runs (install it: `cargo xtask setup`)");
        let bouncer = Pgbouncer { port, child, dir };
        wait_until(
            "pgbouncer to accept connections",
            Duration::from_secs(30),
            || {
                psql_command(port)
                    .args(["-At", "-c", "select 1"])
                    .output()
                    .is_ok_and(|o| o.status.success())
            },
        );
        bouncer
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// pgbouncer's log, for assertions and failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pgbouncer.log")).unwrap_or_default()
    }
}

impl Drop for Pgbouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
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
