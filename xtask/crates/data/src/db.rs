//! `cargo xtask db start|stop|reset|url|push` (push: db/push.rs): the local Supabase-compatible PostgreSQL. One
//! labelled container on a named volume, published on 127.0.0.1; its image is built from
//! supabase/local/ and tagged by a hash of that directory, so it is rebuilt only when it changes.
//!
//! `db reset` never loses the previous data before the new database is ready: it builds the new
//! one next to the old (compatibility bootstrap, migrations in timestamp order, the seed files
//! of supabase/config.toml), each file in one transaction that stops at the first error, and
//! only then swaps the two: both renames in one transaction, so they commit together or not at
//! all. A reset killed at any step is recognised by the next command that touches the database
//! (`repair`), which finishes or rolls back the swap, says which, and keeps the newest complete
//! data. Each step has a failpoint (failpoint.rs), so a test kills it at every one.

use std::{
    io::Write,
    path::Path,
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use xtask_core::{
    docker::{Build, Docker, ImageOwner, Run},
    files::hex,
    lock, process, progress,
    workspace::{self, Workspace},
};

use crate::flags;

pub mod push;
pub mod reset;
pub mod statements;

const IMAGE: &str = "openeu-local-db";
/// The local development credentials, like the Supabase CLI's: not a secret, never deployed.
const USER: &str = "postgres";
const PASSWORD: &str = "postgres";
const DATABASE: &str = "postgres";
/// Where reset builds the new database before the swap.
const NEXT_DATABASE: &str = "openeu_next";
const PREVIOUS_DATABASE: &str = "openeu_previous";
/// The comment a reset puts on its new database once everything applied: the mark that lets
/// `repair` finish an interrupted swap rather than roll it back.
const COMPLETE_MARK: &str = "openeu-reset: complete";

impl flags::DbCommand {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        let docker = Docker::new(ws);
        match self {
            flags::DbCommand::Start => {
                docker.require_engine()?;
                let _lock = lock::stack(ws, "db start")?;
                start(ws, &docker, None)?;
                println!("{}", local_url(ws));
            }
            flags::DbCommand::Stop => {
                docker.require_engine()?;
                let _lock = lock::stack(ws, "db stop")?;
                let step = progress::step(format!("removing {}", container(ws)));
                docker.remove_container(&container(ws))?;
                step.done();
            }
            flags::DbCommand::Reset(args) => args.run(ws, &docker)?,
            flags::DbCommand::Url => println!("{}", local_url(ws)),
            flags::DbCommand::Push(args) => args.run(ws)?,
        }
        Ok(())
    }
}

/// The local database's URL from the host.
pub fn local_url(ws: &Workspace) -> String {
    format!(
        "postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{DATABASE}",
        ws.config.db_port
    )
}

/// The local database's URL from a container on the stack's network.
pub fn network_url() -> String {
    // The stack's private network: the service requires TLS for non-loopback hosts by default.
    format!("postgres://{USER}:{PASSWORD}@db:5432/{DATABASE}?sslmode=disable")
}

/// The database container's name.
pub fn container(ws: &Workspace) -> String {
    ws.config.stack_name("db")
}

fn stack_labels(ws: &Workspace) -> Vec<(String, String)> {
    vec![ws.config.stack_label()]
}

/// The database image, built only when no image has the hash of its inputs.
pub fn image(ws: &Workspace, docker: &Docker<'_>) -> Result<String> {
    let dir = ws.path(workspace::LOCAL_DB_DIR);
    let mut hasher = Sha256::new();
    for file in ["Dockerfile", "supabase-compat.sql"] {
        let path = dir.join(file);
        let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        hasher.update(file.as_bytes());
        hasher.update(b"\0");
        hasher.update(Sha256::digest(&bytes));
    }
    let reference = format!("{IMAGE}:{}", &hex(&hasher.finalize())[..16]);
    if docker.image_exists(&reference)? {
        return Ok(reference);
    }
    let step = progress::step(format!("building {reference}"));
    docker.build(&Build {
        dockerfile: &dir.join("Dockerfile"),
        context: &dir,
        tags: vec![reference.clone()],
        build_args: Vec::new(),
        labels: Vec::new(),
        no_cache: false,
        owner: ImageOwner::Shared,
        log: ws.scratch("logs")?.join("db-image-build.log"),
    })?;
    step.done();
    Ok(reference)
}

/// Starts the container on the current image (replacing one on an older image; the volume
/// stays), repairs an interrupted reset, and waits until Docker calls it healthy: a real
/// `select 1` over TCP.
pub fn start(ws: &Workspace, docker: &Docker<'_>, network: Option<&str>) -> Result<()> {
    let image = image(ws, docker)?;
    let wanted = docker.image_id(&image)?;
    let name = container(ws);
    match docker.container_image(&name)? {
        Some((id, true)) if id == wanted => {
            progress::note(format!("{name} is running on {image}"));
            return wait_ready(ws, docker, &name);
        }
        Some(_) => docker.remove_container(&name)?,
        None => {}
    }
    let step = progress::step(format!(
        "starting {name} on 127.0.0.1:{}",
        ws.config.db_port
    ));
    let volume = ws.config.stack_name("db-data");
    docker.ensure_volume(&volume, &stack_labels(ws))?;
    docker.run_detached(&Run {
        image: &image,
        name: Some(&name),
        publish: vec![format!("127.0.0.1:{}:5432", ws.config.db_port)],
        env: Vec::new(),
        labels: stack_labels(ws),
        network: network.map(|n| (n, "db")),
        volumes: vec![format!("{volume}:/var/lib/postgresql/data")],
    })?;
    wait_ready(ws, docker, &name)?;
    step.done();
    Ok(())
}

/// Waits until the server answers (on template1, which a reset never renames), repairs an
/// interrupted reset, then waits for Docker's health check, which connects to `postgres`: a
/// missing `postgres` is repaired here instead of becoming a health-check timeout.
fn wait_ready(ws: &Workspace, docker: &Docker<'_>, name: &str) -> Result<()> {
    let admin = Target::local(ws, "template1");
    process::wait_until(
        &format!("{name} to accept connections"),
        Duration::from_secs(60),
        || {
            let (_, running) = docker.container_state(name)?;
            if !running {
                bail!("{name} stopped; its logs:\n{}", docker.logs(name)?);
            }
            Ok(admin.run_sql("select 1").is_ok())
        },
    )?;
    reset::repair(ws)?;
    wait_healthy(docker, name)
}

/// Waits for the container `name` to report healthy; its logs when it stops instead.
pub fn wait_healthy(docker: &Docker<'_>, name: &str) -> Result<()> {
    process::wait_until(
        &format!("{name} to become healthy"),
        Duration::from_mins(1),
        || {
            let (health, running) = docker.container_state(name)?;
            if !running {
                bail!("{name} stopped; its logs:\n{}", docker.logs(name)?);
            }
            Ok(health == "healthy")
        },
    )
}

/// Where to connect psql: host, port, user, database; the password goes through PGPASSWORD.
struct Target {
    host: String,
    port: u16,
    user: String,
    password: String,
    database: String,
    /// PGSSLMODE and PGSSLROOTCERT from a remote URL (xtask/crates/core/src/pgtls.rs).
    tls: Vec<(&'static str, String)>,
}

impl Target {
    fn local(ws: &Workspace, database: &str) -> Target {
        Target {
            host: "127.0.0.1".into(),
            port: ws.config.db_port,
            user: USER.into(),
            password: PASSWORD.into(),
            database: database.into(),
            tls: Vec::new(),
        }
    }

    fn from_url(url: &str) -> Result<Target> {
        let parsed = openeu_env::parse_url(url)
            .filter(|u| u.scheme == "postgres" || u.scheme == "postgresql")
            .context("--db-url must be a postgres:// URL")?;
        let password = url
            .split_once("://")
            .and_then(|(_, rest)| rest.split_once('@'))
            .and_then(|(info, _)| info.split_once(':'))
            .map(|(_, p)| p.to_owned())
            .unwrap_or_default();
        Ok(Target {
            host: parsed.host.trim_matches(['[', ']']).to_owned(),
            port: parsed.port.unwrap_or(5432),
            user: parsed.user.unwrap_or("postgres").to_owned(),
            password,
            database: parsed
                .rest
                .trim_start_matches('/')
                .split('?')
                .next()
                .filter(|d| !d.is_empty())
                .unwrap_or("postgres")
                .to_owned(),
            tls: Vec::new(),
        })
    }

    /// psql with the connection in arguments and the password in the environment only.
    fn psql(&self) -> Command {
        let mut cmd = process::command("psql");
        cmd.args([
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            &self.host,
            "-p",
            &self.port.to_string(),
            "-U",
            &self.user,
            "-d",
            &self.database,
        ]);
        cmd.env("PGPASSWORD", &self.password)
            .env("PGCONNECT_TIMEOUT", "10")
            .envs(self.tls.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs `script` fed through stdin. `before_end` runs after everything but `last` was
    /// written: where a failpoint kills us with a transaction still open.
    fn run_script(&self, script: &str, before_end: impl FnOnce(), last: &str) -> Result<()> {
        let mut cmd = self.psql();
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().context("starting psql")?;
        let mut stdin = child.stdin.take().expect("stdin was piped");
        // psql may have stopped at an error already (a closed pipe): its exit status and its
        // stderr say why, below.
        let _ = stdin
            .write_all(script.as_bytes())
            .and_then(|()| stdin.flush());
        before_end();
        let _ = stdin.write_all(last.as_bytes());
        drop(stdin);
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "psql on {}:{}/{}: {}",
                self.host,
                self.port,
                self.database,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    fn run_sql(&self, sql: &str) -> Result<String> {
        let mut cmd = self.psql();
        cmd.args(["-At", "-c", sql]);
        let out = process::output_with_timeout(cmd, None, Duration::from_mins(2))?;
        if !out.status.success() {
            bail!(
                "psql on {}:{}/{}: {}",
                self.host,
                self.port,
                self.database,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Runs `file` in one transaction; psql's error names the file and the line.
    fn run_file(&self, file: &Path) -> Result<()> {
        let mut cmd = self.psql();
        cmd.arg("--single-transaction").arg("-f").arg(file);
        let out = process::output_with_timeout(cmd, None, Duration::from_mins(10))?;
        if !out.status.success() {
            bail!(
                "{} failed, nothing of it was applied:\n{}",
                file.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}

/// How many meetings the local database holds (for `up`'s report).
pub fn meeting_count(ws: &Workspace) -> Result<String> {
    Target::local(ws, DATABASE).run_sql("select count(*) from public.meetings")
}

#[cfg(test)]
mod tests;
