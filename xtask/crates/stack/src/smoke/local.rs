//! The isolated stack a smoke run starts, and the checks only a local container allows. The
//! stack is the `up` stack's parts (db.rs, image.rs) under a workspace configured with the run's
//! own stack name (network, containers, volume) and database port, and the run's owner labels
//! (owner.rs), so four runs side by side never collide and a killed run's leftovers are swept.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Write},
    process::Stdio,
    sync::mpsc,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use super::{
    client::Base,
    report::{Outcome, Verdict},
};
use xtask_core::{docker::Docker, files::hex, owner::Run, process, progress, workspace::Workspace};
use xtask_data::db;
use xtask_images::image;

/// A started stack.
pub struct Stack {
    /// The run's workspace: the stack name and database port are the run's own, and its
    /// labels are the run's owner labels.
    pub ws: Workspace,
    pub url: String,
    pub app: String,
    pub db: String,
    pub image: String,
    /// The stack's JWT secret, made for this run only.
    pub secret: String,
}

/// A throwaway JWT secret: unique per run, never written anywhere but the app's environment.
fn run_secret(run: &Run) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let digest = Sha256::new()
        .chain_update(run.id.as_bytes())
        .chain_update(now.as_nanos().to_le_bytes())
        .chain_update(std::process::id().to_le_bytes())
        .finalize();
    hex(&digest)
}

/// The workspace of a run: `parent`'s root and labels, plus the run's labels, its own stack
/// name and a free database port.
pub fn run_workspace(parent: &Workspace, run: &Run) -> Result<Workspace> {
    let mut labels = parent.labels.clone();
    labels.extend(run.labels());
    let mut ws = Workspace::open(Some(parent.root.clone()), labels)?;
    ws.config.stack = run.id.clone();
    ws.config.db_port = xtask_core::net::free_port()?;
    Ok(ws)
}

/// Starts the run's network, seeded database and app container on `image`.
pub fn start(ws: Workspace, run: &Run, image: &str) -> Result<Stack> {
    let docker = Docker::new(&ws);
    let network = ws.config.stack_name("");
    let labels = vec![ws.config.stack_label()];
    let step = progress::step(format!("network {network}"));
    docker.ensure_network(&network, &labels)?;
    step.done();
    db::start(&ws, &docker, Some(&network))?;
    let files = db::reset::files_to_apply(&ws)?;
    let secret = run_secret(run);
    let app = ws.config.stack_name("api");
    let env = vec![
        ("ENVIRONMENT".to_owned(), "local".to_owned()),
        ("SUPABASE_JWT_SECRET".to_owned(), secret.clone()),
        ("DATABASE_URL".to_owned(), db::network_url()),
    ];
    // The app turns healthy without the database (its HEALTHCHECK is /health), so it starts
    // while the database is seeded; its pool connects on the first request that needs it. A
    // workspace holds a shell, which stays on its thread, so the app's thread has its own.
    let mut app_ws = Workspace::open(Some(ws.root.clone()), ws.labels.clone())?;
    app_ws.config = ws.config.clone();
    let running = std::thread::scope(|scope| {
        let (app, network) = (&app, &network);
        let app_thread = scope.spawn(move || {
            image::run_healthy(
                &Docker::new(&app_ws),
                image,
                Some(app),
                Some((network, "api")),
                env,
                labels,
            )
        });
        let step = progress::step("seeding the run's database (migrations, seed)");
        let seeded = db::reset::reset_local_files(&ws, &files);
        if seeded.is_ok() {
            step.done();
        }
        let running = app_thread
            .join()
            .map_err(|_| anyhow::anyhow!("starting the app panicked"))?;
        seeded.and(running)
    })?;
    let db = db::container(&ws);
    Ok(Stack {
        url: running.url,
        app,
        db,
        image: image.to_owned(),
        secret,
        ws,
    })
}

fn outcome(name: &str, started: Instant, result: Result<()>) -> Outcome {
    let (verdict, failures) = match result {
        Ok(()) => (Verdict::Pass, Vec::new()),
        Err(err) => (Verdict::Fail, vec![format!("{err:#}")]),
    };
    Outcome {
        name: name.to_owned(),
        kind: "container",
        verdict,
        latency: started.elapsed(),
        request: None,
        failures,
        excerpt: None,
    }
}

/// The checks that do not disturb the stack: they run beside the HTTP checks.
pub fn passive_checks(stack: &Stack) -> Vec<Outcome> {
    let docker = Docker::new(&stack.ws);
    let started = Instant::now();
    let non_root = outcome(
        "container: non-root, HEALTHCHECK healthy",
        started,
        non_root_and_healthy(&docker, stack),
    );
    let started = Instant::now();
    let secrets = outcome(
        "image: no secret in env, labels or history",
        started,
        no_secret_in_image(&docker, &stack.image),
    );
    vec![non_root, secrets]
}

/// The checks that stop the database and then the app: they run last, one after the other.
pub fn disruptive_checks(stack: &Stack) -> Vec<Outcome> {
    let docker = Docker::new(&stack.ws);
    let started = Instant::now();
    let db = outcome(
        "container: db down, /health 200, /ready 503 in 1s, back",
        started,
        database_outage(&docker, stack),
    );
    let started = Instant::now();
    let drain = outcome(
        "container: SIGTERM drains a slow request, exit 0",
        started,
        drains_on_sigterm(&docker, stack),
    );
    vec![db, drain]
}

fn non_root_and_healthy(docker: &Docker<'_>, stack: &Stack) -> Result<()> {
    let user = docker.inspect("container", &stack.app, "{{.Config.User}}")?;
    let user = user.trim();
    let name = user.split(':').next().unwrap_or_default();
    if name.is_empty() || name == "0" || name == "root" {
        bail!("the image runs as {:?}: expected a non-root USER", user);
    }
    // The runtime image has no shell and no `id`: the process's real and effective uid come
    // from the host's view of it, /proc/<pid>/status.
    let pid = docker.inspect("container", &stack.app, "{{.State.Pid}}")?;
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim()))
        .with_context(|| format!("reading the status of the app's process {}", pid.trim()))?;
    let uids = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .context("no Uid line in the process status")?;
    if uids.split_whitespace().take(2).any(|uid| uid == "0") {
        bail!("the process runs as uid 0 ({})", uids.trim());
    }
    let health = docker.inspect("container", &stack.app, "{{.State.Health.Status}}")?;
    if health.trim() != "healthy" {
        bail!("HEALTHCHECK: expected healthy, got {}", health.trim());
    }
    Ok(())
}

/// The secret-marked variables of the env spec that have a value in the image: its env, its
/// labels, or the commands of its history.
pub fn secret_leaks(
    secrets: &[&str],
    env: &[String],
    labels: &BTreeMap<String, String>,
    history: &str,
) -> Vec<String> {
    let mut leaks = Vec::new();
    for name in secrets {
        let assigned = format!("{name}=");
        if env
            .iter()
            .any(|e| e.strip_prefix(&assigned).is_some_and(|v| !v.is_empty()))
        {
            leaks.push(format!("{name} has a value in the image's env"));
        }
        for (key, value) in labels {
            if key.contains(name) || value.contains(&assigned) {
                leaks.push(format!("{name} appears in the image's label {key}"));
            }
        }
        for line in history.lines() {
            if let Some(at) = line.find(&assigned) {
                let value = line[at + assigned.len()..]
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .trim_matches(['"', '\'']);
                if !value.is_empty() {
                    leaks.push(format!("{name} is given a value in the image's history"));
                    break;
                }
            }
        }
    }
    leaks
}

fn no_secret_in_image(docker: &Docker<'_>, image: &str) -> Result<()> {
    let env: Option<Vec<String>> =
        serde_json::from_str(&docker.inspect("image", image, "{{json .Config.Env}}")?)
            .context("parsing the image's env")?;
    let labels = docker.image_labels(image)?;
    let history = docker.history(image)?;
    let secrets: Vec<&str> = openeu_env::SPEC
        .iter()
        .filter(|v| v.secret)
        .map(|v| v.name)
        .collect();
    if secrets.is_empty() {
        bail!("the env spec marks no variable secret; nothing to check against");
    }
    let leaks = secret_leaks(&secrets, &env.unwrap_or_default(), &labels, &history);
    if !leaks.is_empty() {
        bail!("{}", leaks.join("; "));
    }
    Ok(())
}

fn get(base: &Base, path: &str, timeout: Duration) -> Result<u16> {
    Ok(base.send("GET", path, &[], timeout)?.status)
}

fn database_outage(docker: &Docker<'_>, stack: &Stack) -> Result<()> {
    let base = Base::new(&stack.url)?;
    let started_at = docker.inspect("container", &stack.app, "{{.State.StartedAt}}")?;
    docker.stop_container(&stack.db, Duration::from_secs(10))?;
    let result = (|| {
        let status = get(&base, "/health", Duration::from_secs(1))?;
        if status != 200 {
            bail!("with the database stopped, /health: expected 200, got {status}");
        }
        let asked = Instant::now();
        let status = get(&base, "/ready", Duration::from_secs(1))
            .context("with the database stopped, /ready did not answer within 1s")?;
        let took = asked.elapsed();
        if status != 503 || took > Duration::from_secs(1) {
            bail!(
                "with the database stopped, /ready: expected 503 within 1s, got {status} after {:.2}s",
                took.as_secs_f64()
            );
        }
        Ok(())
    })();
    docker.start_container(&stack.db)?;
    result?;
    process::wait_until(
        "/ready to answer 200 once the database is back",
        Duration::from_secs(30),
        || Ok(get(&base, "/ready", Duration::from_secs(2)).is_ok_and(|s| s == 200)),
    )?;
    if docker.inspect("container", &stack.app, "{{.State.StartedAt}}")? != started_at {
        bail!("the app container restarted; /ready must recover without a restart");
    }
    Ok(())
}

/// Holds a lock on the meetings table from a psql session inside the database container, so a
/// `/meetings` request waits on it: a request that is really in flight for as long as we want.
struct TableLock {
    child: std::process::Child,
}

impl TableLock {
    fn take(docker: &Docker<'_>, container: &str) -> Result<TableLock> {
        let mut cmd = docker.exec_command(
            container,
            &[
                "psql", "-X", "-q", "-At", "-U", "postgres", "-d", "postgres",
            ],
        );
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd
            .spawn()
            .context("starting psql in the database container")?;
        let mut stdin = child.stdin.take().context("psql's stdin")?;
        stdin.write_all(
            b"begin;\nlock table public.meetings in access exclusive mode;\nselect 'locked';\n",
        )?;
        child.stdin = Some(stdin);
        let stdout = child.stdout.take().context("psql's stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.trim() == "locked" {
                    let _ = tx.send(());
                }
            }
        });
        let mut lock = TableLock { child };
        if rx.recv_timeout(Duration::from_secs(10)).is_err() {
            lock.release();
            bail!("psql did not take the lock on public.meetings within 10s");
        }
        Ok(lock)
    }

    fn release(&mut self) {
        if let Some(mut stdin) = self.child.stdin.take() {
            let _ = stdin.write_all(b"commit;\n");
        }
        let _ = self.child.wait();
    }
}

impl Drop for TableLock {
    fn drop(&mut self) {
        self.release();
    }
}

fn drains_on_sigterm(docker: &Docker<'_>, stack: &Stack) -> Result<()> {
    const DRAIN_DEADLINE: Duration = Duration::from_secs(20);
    let base = Base::new(&stack.url)?;
    let request_id = format!("smoke-drain-{}", stack.ws.config.stack);
    let mut lock = TableLock::take(docker, &stack.db)?;
    let request = {
        let base = base.clone();
        let headers = vec![("X-Request-Id".to_owned(), request_id.clone())];
        std::thread::spawn(move || {
            base.send(
                "GET",
                "/meetings?limit=1",
                &headers,
                Duration::from_secs(15),
            )
            .map(|r| r.status)
        })
    };
    // In flight: the service's statement waits on our lock. It must be released within the
    // service's 5 s statement timeout, so nothing slow happens between here and the release.
    let waiting = "select count(*) from pg_locks where not granted and relation = 'public.meetings'::regclass";
    let in_flight = process::wait_until(
        "the request to wait on the lock",
        Duration::from_secs(4),
        || {
            let out = process::output_with_timeout(
                docker.exec_command(
                    &stack.db,
                    &[
                        "psql", "-X", "-At", "-U", "postgres", "-d", "postgres", "-c", waiting,
                    ],
                ),
                None,
                Duration::from_secs(5),
            )?;
            Ok(String::from_utf8_lossy(&out.stdout).trim() != "0")
        },
    );
    let signalled = Instant::now();
    let sent = in_flight.and_then(|()| docker.signal_container(&stack.app, "TERM"));
    // `docker kill` returns once the signal is delivered, but the service notices it on its
    // own schedule: under load the request could finish before the service has seen the
    // signal, and the check would measure the scheduler. So the lock is held until the
    // service has logged that it is draining (well within its 5 s statement timeout).
    let draining = sent.and_then(|()| {
        process::wait_until(
            "the service to log \"shutdown signal received\"",
            Duration::from_secs(3),
            || {
                Ok(docker
                    .logs(&stack.app)?
                    .contains("shutdown signal received"))
            },
        )
    });
    lock.release();
    draining?;
    let status = request
        .join()
        .map_err(|_| anyhow::anyhow!("the request thread panicked"))?
        .context("the in-flight request failed after SIGTERM")?;
    if status != 200 {
        bail!("the in-flight request: expected 200 after SIGTERM, got {status}");
    }
    process::wait_until(
        "the app container to exit",
        DRAIN_DEADLINE + Duration::from_secs(5),
        || Ok(!docker.container_state(&stack.app)?.1),
    )?;
    let took = signalled.elapsed();
    let code = docker.inspect("container", &stack.app, "{{.State.ExitCode}}")?;
    if code.trim() != "0" || took > DRAIN_DEADLINE {
        bail!(
            "after SIGTERM: expected exit 0 within {}s, got exit {} after {:.1}s",
            DRAIN_DEADLINE.as_secs(),
            code.trim(),
            took.as_secs_f64()
        );
    }
    // The service's own log proves the order: draining began before the request finished.
    let logs = docker.logs(&stack.app)?;
    let draining = logs.find("shutdown signal received");
    let finished = logs.find(&format!("\"request_id\":\"{request_id}\""));
    match (draining, finished) {
        (Some(d), Some(f)) if d < f => Ok(()),
        _ => bail!(
            "the service's log does not show request {request_id} finishing after \"shutdown signal received\""
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_in_env_labels_or_history_are_found() {
        let secrets = ["SUPABASE_JWT_SECRET", "DATABASE_URL"];
        let clean = secret_leaks(
            &secrets,
            &["PATH=/bin".into(), "DATABASE_URL=".into()],
            &BTreeMap::from([("org.opencontainers.image.revision".into(), "abc".into())]),
            "/bin/sh -c #(nop)  ENV PORT=8080\n/bin/sh -c useradd openeu",
        );
        assert_eq!(clean, Vec::<String>::new());
        let leaks = secret_leaks(
            &secrets,
            &["SUPABASE_JWT_SECRET=abc".into()],
            &BTreeMap::from([("x".into(), "DATABASE_URL=postgres://u:p@h/d".into())]),
            "/bin/sh -c #(nop)  ARG DATABASE_URL=postgres://x",
        );
        assert_eq!(leaks.len(), 3, "{leaks:?}");
    }
}
