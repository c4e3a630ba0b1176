//! `cargo xtask deploy`: ship the tested image to Render, wait until it is live, prove it, and
//! roll back when it is not. Also `deploy status | list | logs | rollback`.
//!
//! The flow (README "Deploying"): preflight, every problem at once and nothing changed when any
//! fails (clean tree, generated files current, the API key, the service and its env var names,
//! no deploy in progress, registry credentials, the deploy lock, pending migrations applying
//! cleanly) → build the app image (image-backed services) → push it, taking the digest → apply
//! the pending migrations → trigger (`imageUrl@digest`, or `commitId` for Git-backed services)
//! → wait for a terminal status, printing each change → verify the public URL → report.
//!
//! Parts: render.rs (the API client), stub.rs (Render's API for tests and benchmarks), lock.rs
//! (one deploy at a time), verify.rs (post-deploy checks; the smoke call site), interrupt.rs
//! (Ctrl-C). The migrations are `db push`'s (db/push.rs).

pub mod blueprint;
pub mod interrupt;
pub mod lock;
pub mod render;
pub mod stub;
pub mod verify;

use std::{
    collections::BTreeSet,
    fmt,
    time::{Duration, Instant},
};

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::{
    base,
    db::push::{self, Conn},
    docker::{Docker, registry},
    flags, https, image, progress,
    workspace::{self, Workspace},
};
use render::{Api, Deploy, Kind, Service, Source, Status};

/// The exit codes of `cargo xtask deploy` (and `deploy rollback`), as the README lists them.
pub mod exit {
    /// Live and verified.
    pub const LIVE: u8 = 0;
    /// An unexpected error (the API unreachable after retries, a tool failing).
    pub const ERROR: u8 = 1;
    /// Bad input or a failed preflight: nothing was changed.
    pub const PREFLIGHT: u8 = 2;
    /// Render reports the deploy failed: build_failed, update_failed, pre_deploy_failed,
    /// canceled.
    pub const FAILED: u8 = 3;
    /// The deadline passed; the deploy goes on at Render.
    pub const TIMEOUT: u8 = 4;
    /// Live, but the URL failed verification (no rollback was asked for).
    pub const UNVERIFIED: u8 = 5;
    /// Live, failed verification, and was rolled back to the previous deploy.
    pub const ROLLED_BACK: u8 = 6;
    /// Interrupted (Ctrl-C) while waiting; the deploy goes on unless --cancel-on-interrupt.
    pub const INTERRUPTED: u8 = 130;
}

/// An error that carries the process's exit code; `main` uses it.
#[derive(Debug)]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

fn fail(code: u8, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Exit {
        code,
        message: message.into(),
    })
}

const API_KEY: &str = "RENDER_API_KEY";
const SERVICE_ID: &str = "RENDER_SERVICE_ID";
const API_URL: &str = "RENDER_API_URL";
const HOOK_URL: &str = "RENDER_DEPLOY_HOOK_URL";

/// How many log lines a failed deploy shows.
const FAILURE_LOG_LINES: u32 = 50;
/// The fastest the wait polls; slower when the rate-limit headers ask for it.
const MIN_POLL: Duration = Duration::from_millis(250);

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The deploy tool's configuration, from the environment (the env spec's deploy variables).
struct Settings {
    api_key: Option<String>,
    service_id: Option<String>,
    api_url: String,
    hook_url: Option<String>,
    db_url: Option<String>,
}

impl Settings {
    fn from_env() -> Settings {
        Settings {
            api_key: env(API_KEY),
            service_id: env(SERVICE_ID),
            api_url: env(API_URL).unwrap_or_else(|| render::DEFAULT_API_URL.to_owned()),
            hook_url: env(HOOK_URL),
            db_url: env(push::DB_URL_VAR),
        }
    }

    /// The problems with the variables themselves: missing or malformed, by name only.
    fn problems(&self, need_db: bool) -> Vec<String> {
        let mut problems = Vec::new();
        let mut required = vec![API_KEY, SERVICE_ID];
        if need_db {
            required.push(push::DB_URL_VAR);
        }
        for name in required {
            if env(name).is_none() {
                let description = openeu_env::var(name).map_or("", |v| v.description);
                problems.push(format!("{name} is not set: {description}"));
            }
        }
        for name in [API_URL, HOOK_URL, push::DB_URL_VAR] {
            if let (Some(value), Some(var)) = (env(name), openeu_env::var(name))
                && let Err(why) = var.format.check(&value)
            {
                problems.push(format!("{name} is malformed: it {why}"));
            }
        }
        problems
    }

    fn api(&self, client: &https::Client) -> Result<(Api, String)> {
        let key = self.api_key.as_deref().with_context(|| {
            format!("{API_KEY} is not set: create an API key in Render's account settings")
        })?;
        let service = self
            .service_id
            .clone()
            .with_context(|| format!("{SERVICE_ID} is not set: the srv-… id of the service"))?;
        Ok((Api::new(&self.api_url, key, client.clone()), service))
    }
}

impl flags::Deploy {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        match self.command {
            None => self.args.run(ws),
            Some(flags::DeployCommand::Status(args)) => status(&args),
            Some(flags::DeployCommand::List(args)) => list(&args),
            Some(flags::DeployCommand::Logs(args)) => logs(&args),
            Some(flags::DeployCommand::Rollback(args)) => rollback_command(ws, &args),
            Some(flags::DeployCommand::Blueprint(args)) => blueprint::run(ws, args.check),
        }
    }
}

/// Seconds per phase, in order, for the report.
#[derive(Default)]
struct Phases(Vec<(&'static str, f64)>);

impl Phases {
    fn time<T>(&mut self, name: &'static str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let started = Instant::now();
        let result = f();
        self.0.push((name, started.elapsed().as_secs_f64()));
        result
    }

    fn json(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(k, v)| ((*k).to_owned(), json!((v * 1000.0).round() / 1000.0)))
                .collect(),
        )
    }
}

/// What preflight found out, for the later phases.
struct Preflight {
    service: Service,
    head: String,
    live: Option<Deploy>,
    running: Vec<Deploy>,
    known: BTreeSet<String>,
    plan: push::Plan,
    conn: Conn,
    /// What a dry run reports instead of refusing (e.g. a base push that is needed).
    notes: Vec<String>,
    /// Held until the deploy ends (dropped with the preflight).
    _lock: Option<lock::Lock>,
}

impl flags::DeployRun {
    fn run(self, ws: &Workspace) -> Result<()> {
        let started = Instant::now();
        let mut phases = Phases::default();
        let mut report = json!({
            "service": Value::Null,
            "deploy_id": Value::Null,
            "status": Value::Null,
            "commit": Value::Null,
            "image": Value::Null,
            "digest": Value::Null,
            "url": Value::Null,
            "migrations_applied": [],
            "smoke": {"ran": false, "skipped": self.skip_smoke},
            "dry_run": self.dry_run,
        });
        let result = self.deploy(ws, &mut phases, &mut report);
        report["phases"] = phases.json();
        report["duration_s"] = json!((started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0);
        let code = match &result {
            Ok(()) => exit::LIVE,
            Err(err) => err.downcast_ref::<Exit>().map_or(exit::ERROR, |e| e.code),
        };
        report["exit_code"] = json!(code);
        if let Err(err) = &result {
            report["error"] = json!(format!("{err:#}"));
        }
        if self.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else if result.is_ok() {
            println!(
                "{} {} live at {} ({})",
                report["deploy_id"].as_str().unwrap_or_default(),
                report["status"].as_str().unwrap_or_default(),
                report["url"].as_str().unwrap_or_default(),
                report["image"]
                    .as_str()
                    .or(report["commit"].as_str())
                    .unwrap_or_default()
            );
        }
        result
    }

    fn deploy(&self, ws: &Workspace, phases: &mut Phases, report: &mut Value) -> Result<()> {
        let settings = Settings::from_env();
        let client = https::Client::new(https::Timeouts::default())?;
        let docker = Docker::new(ws);
        let pre = phases.time("preflight", || {
            self.preflight(ws, &settings, &client, &docker)
        })?;
        let (api, service_id) = settings.api(&client)?;
        report["service"] = json!(pre.service.id);
        report["commit"] = json!(pre.head);
        report["url"] = json!(pre.service.url);
        let image_backed = matches!(pre.service.kind, Kind::Image { .. });

        if self.dry_run {
            print_plan(self, &pre, image_backed, report);
            return Ok(());
        }

        if !pre.running.is_empty() {
            phases.time("wait_for_running", || {
                for running in &pre.running {
                    progress::note(format!(
                        "waiting for {} ({}) to finish first (--wait-for-running)",
                        running.id, running.status
                    ));
                    wait_for(&api, &service_id, &running.id, self.timeout, false)?;
                }
                Ok(())
            })?;
        }

        // Build, smoke and push (image-backed), or nothing to build here (Git-backed).
        let source = if image_backed {
            let image_url = match &self.image {
                Some(reference) => reference.clone(),
                None => {
                    let built = phases.time("build", || {
                        docker.require_engine()?;
                        image::build(ws, &docker)
                    })?;
                    if !self.skip_smoke {
                        // The image that ships is the image that passed every smoke check.
                        phases.time("smoke", || crate::smoke::verify_image(ws, &built.image))?;
                    }
                    let digest =
                        phases.time("push", || base::push_image(ws, &docker, &built.image))?;
                    format!("{}@{digest}", ws.config.app_repository())
                }
            };
            let digest = image_url
                .split_once('@')
                .map(|(_, d)| d.to_owned())
                .context("--image must be pinned by digest: <registry>/<name>@sha256:…")?;
            report["image"] = json!(image_url);
            report["digest"] = json!(digest);
            Source::Image {
                url: image_url,
                digest,
            }
        } else {
            Source::Commit(pre.head.clone())
        };

        phases.time("migrate", || push::apply(ws, &pre.conn, &pre.plan.pending))?;
        report["migrations_applied"] = json!(pre.plan.pending_versions());

        let deploy = phases.time("trigger", || {
            let step = progress::step("triggering the deploy");
            let deploy = if self.via_hook {
                let hook = settings
                    .hook_url
                    .as_deref()
                    .with_context(|| format!("--via-hook needs {HOOK_URL}"))?;
                progress::note(format!("deploy hook {}", https::mask_query_secret(hook)));
                // An image-backed service's hook deploys the image named by `imgURL`.
                let hook = match &source {
                    Source::Image { url, .. } => format!(
                        "{hook}{}imgURL={}",
                        if hook.contains('?') { '&' } else { '?' },
                        url.replace('@', "%40")
                            .replace(':', "%3A")
                            .replace('/', "%2F")
                    ),
                    Source::Commit(_) => hook.to_owned(),
                };
                match render::trigger_hook(&client, &hook)? {
                    Some(id) => api.deploy(&service_id, &id)?,
                    None => api
                        .deploys(&service_id, &[], 20)?
                        .into_iter()
                        .find(|d| !pre.known.contains(&d.id))
                        .context("the deploy hook answered, but Render lists no new deploy")?,
                }
            } else {
                api.trigger(&service_id, &source, &pre.known)?
            };
            step.done_with(&format!("{} ({})", deploy.id, deploy.status));
            Ok(deploy)
        })?;
        report["deploy_id"] = json!(deploy.id);

        interrupt::install();
        let done = phases.time("wait", || {
            wait_for(
                &api,
                &service_id,
                &deploy.id,
                self.timeout,
                self.cancel_on_interrupt,
            )
        })?;
        report["status"] = json!(done.status.as_str());
        if done.status.failed() {
            let logs = api
                .logs(&pre.service, &done, FAILURE_LOG_LINES)
                .map(|lines| lines.join("\n"))
                .unwrap_or_else(|err| format!("(the logs could not be read: {err:#})"));
            return Err(fail(
                exit::FAILED,
                format!(
                    "deploy {} ended {}; production still runs {}. The last {FAILURE_LOG_LINES} log lines:\n{logs}\nFix the cause and deploy again; `cargo xtask deploy logs --deploy {}` shows more",
                    done.id,
                    done.status,
                    pre.live.as_ref().map_or_else(
                        || "the previous deploy".to_owned(),
                        |d| format!("{} ({})", d.id, d.what())
                    ),
                    done.id
                ),
            ));
        }
        if done.status != Status::Live {
            return Err(fail(
                exit::FAILED,
                format!("deploy {} ended {}, not live", done.id, done.status),
            ));
        }

        let url = pre
            .service
            .url
            .clone()
            .context("the service has no public URL to verify")?;
        let verified = phases.time("verify", || {
            let step = progress::step(format!("verifying {url}"));
            let result = verify::verify(
                &client,
                &url,
                &pre.head,
                (!self.skip_smoke).then_some(ws),
                self.verify_timeout,
            );
            if result.is_ok() {
                step.done();
            }
            result
        });
        match verified {
            Ok(v) => {
                report["smoke"]["ran"] = json!(v.smoke);
                Ok(())
            }
            Err(err) if self.rollback_on_failure => {
                let Some(previous) = &pre.live else {
                    return Err(fail(
                        exit::UNVERIFIED,
                        format!("{err:#}; no earlier live deploy to roll back to"),
                    ));
                };
                progress::note(format!(
                    "verification failed: {err:#}; rolling back to {} (--rollback-on-failure)",
                    previous.id
                ));
                phases.time("rollback", || {
                    roll_back(
                        &api,
                        &client,
                        &service_id,
                        &pre.service,
                        previous,
                        self.timeout,
                        self.verify_timeout,
                    )
                })?;
                Err(fail(
                    exit::ROLLED_BACK,
                    format!(
                        "deploy {} went live but failed verification ({err:#}); rolled back to {} ({}), which is live and verified. Migrations are not rolled back",
                        done.id,
                        previous.id,
                        previous.what()
                    ),
                ))
            }
            Err(err) => Err(fail(
                exit::UNVERIFIED,
                format!(
                    "deploy {} is live but failed verification: {err:#}; roll back with `cargo xtask deploy rollback`",
                    done.id
                ),
            )),
        }
    }

    /// Every check before anything changes; all problems are reported at once.
    fn preflight(
        &self,
        ws: &Workspace,
        settings: &Settings,
        client: &https::Client,
        docker: &Docker<'_>,
    ) -> Result<Preflight> {
        let step = progress::step("preflight");
        let mut problems = settings.problems(true);
        if self.allow_dirty && !self.dry_run {
            problems.push(
                "--allow-dirty is refused for production: commit (and push) what you deploy"
                    .to_owned(),
            );
        }
        let sh = &ws.sh;
        let head = xshell::cmd!(sh, "git rev-parse HEAD")
            .quiet()
            .ignore_stderr()
            .read()
            .unwrap_or_default();
        if head.len() != 40 {
            problems.push(format!(
                "{} is not a git checkout with a commit: deploys ship commits",
                ws.root.display()
            ));
        }
        let dirty = xshell::cmd!(sh, "git status --porcelain --untracked-files=no")
            .quiet()
            .ignore_stderr()
            .read()
            .unwrap_or_default();
        if !dirty.trim().is_empty() && !self.allow_dirty {
            let files: Vec<&str> = dirty.lines().take(5).collect();
            problems.push(format!(
                "the tree has uncommitted changes ({}); commit or stash them",
                files.join(", ")
            ));
        }
        // The generated-file checks (seed rendering, base hashing) take the longest and need no
        // network: they run beside the API and database checks, on a workspace of their own
        // (a `Workspace` holds a shell and is not shared across threads).
        let generated = {
            let root = ws.root.clone();
            let labels = ws.labels.clone();
            std::thread::spawn(move || match Workspace::open(Some(root), labels) {
                Ok(ws) => generated_files_problems(&ws),
                Err(err) => vec![format!("{err:#}")],
            })
        };

        let mut service = None;
        let mut live = None;
        let mut running = Vec::new();
        let mut known = BTreeSet::new();
        let mut notes = Vec::new();
        if let Ok((api, id)) = settings.api(client) {
            match api.service(&id) {
                Ok(found) => {
                    if found.suspended {
                        problems.push(format!(
                            "service {} ({id}) is suspended; resume it in the Render dashboard first",
                            found.name
                        ));
                    }
                    match api.env_var_names(&id) {
                        Ok(names) => problems.extend(env_var_problems(&names)),
                        Err(err) => {
                            problems.push(format!("reading the service's env vars: {err:#}"));
                        }
                    }
                    match api.deploys(&id, &[], 20) {
                        Ok(deploys) => {
                            known = deploys.iter().map(|d| d.id.clone()).collect();
                            live = deploys.iter().find(|d| d.status == Status::Live).cloned();
                            running = deploys
                                .into_iter()
                                .filter(|d| d.status.in_progress())
                                .collect();
                        }
                        Err(err) => problems.push(format!("listing deploys: {err:#}")),
                    }
                    if !running.is_empty() && !self.wait_for_running && !self.dry_run {
                        let names: Vec<String> = running
                            .iter()
                            .map(|d| format!("{} ({}, {})", d.id, d.status, d.what()))
                            .collect();
                        problems.push(format!(
                            "another deploy of {id} is in progress: {}; a new one would cancel it. Wait with --wait-for-running, or follow it with `cargo xtask deploy status`",
                            names.join(", ")
                        ));
                    }
                    match &found.kind {
                        Kind::Image { image_path } => {
                            problems.extend(self.image_problems(ws, docker, image_path));
                        }
                        Kind::Git { .. } if self.dry_run => {
                            notes.extend(git_backed_problems(ws, docker));
                        }
                        Kind::Git { .. } => problems.extend(git_backed_problems(ws, docker)),
                    }
                    service = Some(found);
                }
                Err(err) => problems.push(format!("{err:#}")),
            }
        }

        let mut plan = None;
        let mut conn = None;
        let mut held = None;
        if let Some(url) = &settings.db_url {
            match Conn::from_url(url) {
                Ok(c) => {
                    let holder = lock::Holder {
                        who: who(),
                        commit: render::short(&head).to_owned(),
                        service: settings.service_id.clone().unwrap_or_default(),
                    };
                    if !self.dry_run {
                        match lock::acquire(&c, &holder, self.wait, self.timeout) {
                            Ok(l) => held = Some(l),
                            Err(err) => problems.push(format!("{err:#}")),
                        }
                    }
                    // Through the lock's session when there is one: a connection saved.
                    let planned = match held.as_mut() {
                        Some(l) => push::plan_with(ws, |sql| l.query(sql)),
                        None => push::plan(ws, &c),
                    };
                    match planned {
                        Ok(p) => {
                            if let Err(err) = push::check_apply(&c, &p.pending) {
                                problems.push(format!("{err:#}"));
                            }
                            plan = Some(p);
                        }
                        Err(err) => problems.push(format!(
                            "migrations for {} ({}): {err:#}",
                            push::DB_URL_VAR,
                            c.display()
                        )),
                    }
                    conn = Some(c);
                }
                Err(err) => problems.push(format!("{}: {err:#}", push::DB_URL_VAR)),
            }
        }

        problems.extend(
            generated
                .join()
                .unwrap_or_else(|_| vec!["the generated-file checks panicked".to_owned()]),
        );
        if !problems.is_empty() {
            drop(held);
            return Err(fail(
                exit::PREFLIGHT,
                format!(
                    "preflight found {} problem(s); nothing was changed:\n  - {}",
                    problems.len(),
                    problems.join("\n  - ")
                ),
            ));
        }
        step.done();
        Ok(Preflight {
            service: service.expect("no problems means the service was read"),
            head,
            live,
            running,
            known,
            plan: plan.expect("no problems means the migrations were planned"),
            conn: conn.expect("no problems means the database URL parsed"),
            notes,
            _lock: held,
        })
    }

    /// Image-backed: the image goes where the service pulls from, and the registry takes our
    /// credentials.
    fn image_problems(&self, ws: &Workspace, docker: &Docker<'_>, image_path: &str) -> Vec<String> {
        let mut problems = Vec::new();
        let ours = match &self.image {
            Some(reference) => repository_of(reference).to_owned(),
            None => ws.config.app_repository(),
        };
        if repository_of(image_path) != ours {
            problems.push(format!(
                "the service pulls {}, but this deploy pushes {ours}; set DOCKER_REGISTRY_SERVER (or the service's image) so they match",
                repository_of(image_path)
            ));
        }
        if self.image.is_none() && !self.dry_run {
            match registry::Credentials::from_env() {
                Some(creds) => {
                    let dir = ws
                        .scratch("docker-config")
                        .map(|d| d.join(format!("preflight-{}", std::process::id())));
                    match dir {
                        Ok(dir) => {
                            let _ = std::fs::create_dir_all(&dir);
                            if let Err(err) = docker.login(
                                &ws.config.registry,
                                &creds.username,
                                &creds.password,
                                &dir,
                            ) {
                                problems.push(format!("{err:#}"));
                            }
                            let _ = std::fs::remove_dir_all(&dir);
                        }
                        Err(err) => problems.push(format!("{err:#}")),
                    }
                }
                None if !ws.config.registry_is_local() => problems.push(
                    "DOCKER_REGISTRY_USERNAME and DOCKER_REGISTRY_PASSWORD are not set: the push to the registry needs them".to_owned(),
                ),
                None => {}
            }
        }
        problems
    }
}

/// `[registry/]name` of a reference, without tag or digest.
fn repository_of(reference: &str) -> &str {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    match without_digest.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => without_digest,
    }
}

/// Who deploys, for the lock's row: the git user, else the login name, and the host.
fn who() -> String {
    let user = env("GIT_AUTHOR_NAME")
        .or_else(|| env("USER"))
        .unwrap_or_else(|| "someone".to_owned());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    format!("{user}@{host} (pid {})", std::process::id())
}

/// The generated files that a deploy ships must be current.
fn generated_files_problems(ws: &Workspace) -> Vec<String> {
    let mut problems = Vec::new();
    let current = |relative: &str, expected: Result<String>, fix: &str| -> Option<String> {
        match expected {
            Ok(text)
                if std::fs::read_to_string(ws.path(relative)).ok().as_deref() == Some(&text) =>
            {
                None
            }
            Ok(_) => Some(format!("{relative} is stale: run `{fix}` and commit it")),
            Err(err) => Some(format!("{relative}: {err:#}")),
        }
    };
    problems.extend(current(
        workspace::SEED_SQL,
        crate::seed::render_workspace(ws),
        "cargo xtask seed",
    ));
    problems.extend(current(
        workspace::ENV_EXAMPLE,
        Ok(openeu_env::render_example()),
        "cargo xtask env example",
    ));
    match base::compute(ws) {
        Ok(inputs) => {
            let dockerfile =
                std::fs::read_to_string(ws.path(workspace::APP_DOCKERFILE)).unwrap_or_default();
            let pinned = dockerfile.lines().any(|l| {
                l.starts_with("ARG BASE_IMAGE=") && l.contains(&format!(":{}@", inputs.tag()))
            });
            if !pinned {
                problems.push(format!(
                    "{}'s base pin is not {}: run `cargo xtask base build --push && cargo xtask base pin` and commit",
                    workspace::APP_DOCKERFILE,
                    inputs.tag()
                ));
            }
        }
        Err(err) => problems.push(format!("hashing the base inputs: {err:#}")),
    }
    problems
}

/// Git-backed: Render builds the pushed commit FROM the pinned base, which must exist.
fn git_backed_problems(ws: &Workspace, docker: &Docker<'_>) -> Vec<String> {
    let mut problems = Vec::new();
    let sh = &ws.sh;
    let pushed = xshell::cmd!(sh, "git branch --remotes --contains HEAD")
        .quiet()
        .ignore_stderr()
        .read()
        .unwrap_or_default();
    if pushed.trim().is_empty() {
        problems.push(
            "HEAD is not on any remote branch: Render builds pushed commits; `git push` first"
                .to_owned(),
        );
    }
    if let Ok(inputs) = base::compute(ws) {
        match registry::lookup(docker, &ws.config.registry, &ws.config.base_image, inputs.tag()) {
            Ok(registry::Lookup::Present { .. }) => {}
            Ok(registry::Lookup::Absent) => problems.push(format!(
                "the pinned base {} is not in the registry, so Render's build would fail: run `cargo xtask base build --push`",
                base::reference(ws, &inputs)
            )),
            Err(err) => problems.push(format!("looking up the pinned base: {err:#}")),
        }
    }
    problems
}

/// Required production variables of the service that Render's service lacks, by name, with
/// the near miss that is set instead ("verify the variable names match exactly").
fn env_var_problems(names: &BTreeSet<String>) -> Vec<String> {
    let unknown = openeu_env::unknown(names.iter().map(String::as_str));
    openeu_env::SPEC
        .iter()
        .filter(|v| {
            v.readers.contains(&openeu_env::Reader::Service)
                && v.required_in.contains(&openeu_env::Target::Production)
                && !names.contains(v.name)
        })
        .map(|v| {
            let near = unknown.iter().find(|p| {
                matches!(p.kind, openeu_env::ProblemKind::Unknown { did_you_mean: Some(g) } if g == v.name)
            });
            match near {
                Some(p) => format!(
                    "the service lacks env var {}; it has {}: did you mean {}? (names must match exactly)",
                    v.name, p.name, v.name
                ),
                None => format!("the service lacks env var {}: {}", v.name, v.description),
            }
        })
        .collect()
}

fn print_plan(args: &flags::DeployRun, pre: &Preflight, image_backed: bool, report: &mut Value) {
    let live = pre
        .live
        .as_ref()
        .map(|d| json!({"id": d.id, "what": d.what()}));
    let what = if image_backed {
        match &args.image {
            Some(image) => format!("image {image}"),
            None => format!(
                "image built from {} (build, push)",
                render::short(&pre.head)
            ),
        }
    } else {
        format!(
            "commit {} (Render builds it FROM the pinned base)",
            pre.head
        )
    };
    report["plan"] = json!({
        "live": live,
        "deploy": what,
        "kind": if image_backed { "image" } else { "git" },
        "pending_migrations": pre.plan.pending_versions(),
        "in_progress": pre.running.iter().map(|d| d.id.clone()).collect::<Vec<_>>(),
        "notes": pre.notes,
    });
    if !args.json {
        println!("plan (dry run, nothing changed):");
        println!(
            "  live now:   {}",
            pre.live.as_ref().map_or_else(
                || "nothing".to_owned(),
                |d| format!("{} {}", d.id, d.what())
            )
        );
        println!("  would ship: {what}");
        println!(
            "  migrations: {}",
            if pre.plan.pending.is_empty() {
                "none pending".to_owned()
            } else {
                pre.plan.pending_versions().join(", ")
            }
        );
        println!("  env vars:   every required name is set on the service");
        for note in &pre.notes {
            println!("  note:       {note}");
        }
    }
}

/// Polls `deploy` until a terminal status, printing each change with the elapsed time.
/// The pace follows the rate-limit headers; the deadline and Ctrl-C end the wait.
fn wait_for(
    api: &Api,
    service: &str,
    deploy: &str,
    timeout: Duration,
    cancel_on_interrupt: bool,
) -> Result<Deploy> {
    let started = Instant::now();
    let mut last: Option<Status> = None;
    loop {
        let current = api.deploy(service, deploy)?;
        if last.as_ref() != Some(&current.status) {
            eprintln!(
                "    [{:>6.1}s] {deploy} {}",
                started.elapsed().as_secs_f64(),
                current.status
            );
            last = Some(current.status.clone());
        }
        if !current.status.in_progress() {
            return Ok(current);
        }
        if interrupt::interrupted() {
            if cancel_on_interrupt {
                let canceled = api.cancel(service, deploy)?;
                return Err(fail(
                    exit::INTERRUPTED,
                    format!(
                        "interrupted: deploy {deploy} was canceled ({})",
                        canceled.status
                    ),
                ));
            }
            return Err(fail(
                exit::INTERRUPTED,
                format!(
                    "interrupted: deploy {deploy} continues on Render ({}); follow it with `cargo xtask deploy status`, or cancel it in the dashboard",
                    current.status
                ),
            ));
        }
        if started.elapsed() >= timeout {
            return Err(fail(
                exit::TIMEOUT,
                format!(
                    "deploy {deploy} is still {} after {:.0}s (--timeout); it goes on at Render: follow it with `cargo xtask deploy status` or `cargo xtask deploy logs --deploy {deploy}`",
                    current.status,
                    timeout.as_secs_f64()
                ),
            ));
        }
        std::thread::sleep(poll_interval(api));
    }
}

/// The wait between polls: spread the remaining requests over the time to the reset, never
/// faster than [`MIN_POLL`], so a wait never exhausts the rate limit.
fn poll_interval(api: &Api) -> Duration {
    match api.rate.get() {
        Some((remaining, reset)) if remaining < 1_000 => {
            let share = reset / u32::try_from(remaining.max(1)).unwrap_or(u32::MAX);
            share.clamp(MIN_POLL, Duration::from_secs(10))
        }
        _ => MIN_POLL,
    }
}

/// Rolls back to `target`, waits for it and verifies it serves.
fn roll_back(
    api: &Api,
    client: &https::Client,
    service_id: &str,
    service: &Service,
    target: &Deploy,
    timeout: Duration,
    verify_timeout: Duration,
) -> Result<Deploy> {
    let step = progress::step(format!("rolling back to {} ({})", target.id, target.what()));
    let deploy = api.rollback(service_id, &target.id)?;
    let done = wait_for(api, service_id, &deploy.id, timeout, false)?;
    if done.status != Status::Live {
        return Err(fail(
            exit::FAILED,
            format!("the rollback {} ended {}", done.id, done.status),
        ));
    }
    if let Some(url) = &service.url {
        match &target.commit {
            Some(commit) => {
                verify::verify(client, url, commit, None, verify_timeout)?;
            }
            None => progress::note(
                "the rollback target is an image without a commit: its version is not checked",
            ),
        }
    }
    step.done_with(&format!("{} live", done.id));
    Ok(done)
}

fn rollback_command(ws: &Workspace, args: &flags::DeployRollback) -> Result<()> {
    let settings = Settings::from_env();
    let client = https::Client::new(https::Timeouts::default())?;
    let (api, service_id) = settings.api(&client)?;
    let service = api.service(&service_id)?;
    let deploys = api.deploys(&service_id, &[], 50)?;
    let live = deploys.iter().find(|d| d.status == Status::Live);
    let target = match &args.deploy_id {
        Some(id) => api.deploy(&service_id, id)?,
        None => {
            let live = live.context("no deploy is live: nothing to roll back from")?;
            deploys
                .iter()
                .filter(|d| d.id != live.id && d.status == Status::Deactivated)
                .find(|d| d.what() != live.what())
                .cloned()
                .context("no earlier deploy went live with a different commit or image")?
        }
    };
    let _lock = match &settings.db_url {
        Some(url) => Some(lock::acquire(
            &Conn::from_url(url)?,
            &lock::Holder {
                who: who(),
                commit: format!("rollback to {}", target.id),
                service: service_id.clone(),
            },
            false,
            args.timeout,
        )?),
        None => None,
    };
    let _ = ws;
    progress::note(
        "migrations are not rolled back: the previous version must run on the current schema (expand, then contract)",
    );
    let done = roll_back(
        &api,
        &client,
        &service_id,
        &service,
        &target,
        args.timeout,
        Duration::from_secs(60),
    )?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &json!({"deploy_id": done.id, "status": done.status.as_str(), "rolled_back_to": target.id})
            )?
        );
    } else {
        println!(
            "{} live: rolled back to {} ({})",
            done.id,
            target.id,
            target.what()
        );
    }
    Ok(())
}

fn status(args: &flags::Json) -> Result<()> {
    let settings = Settings::from_env();
    let client = https::Client::new(https::Timeouts::default())?;
    let (api, service_id) = settings.api(&client)?;
    let service = api.service(&service_id)?;
    let deploys = api.deploys(&service_id, &[], 20)?;
    let live = deploys.iter().find(|d| d.status == Status::Live);
    let running: Vec<&Deploy> = deploys.iter().filter(|d| d.status.in_progress()).collect();
    let health = service.url.as_ref().map(|url| {
        client
            .send(
                "GET",
                &format!("{}/health", url.trim_end_matches('/')),
                &[],
                None,
            )
            .map_or_else(
                |err| format!("unreachable: {err:#}"),
                |r| format!("HTTP {}", r.status),
            )
    });
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "service": service.id,
                "url": service.url,
                "suspended": service.suspended,
                "live": live.map(deploy_json),
                "in_progress": running.iter().map(|d| deploy_json(d)).collect::<Vec<_>>(),
                "health": health,
            }))?
        );
    } else {
        println!("service  {} ({})", service.name, service.id);
        match live {
            Some(d) => println!(
                "live     {} {} since {}",
                d.id,
                d.what(),
                d.finished_at.as_deref().unwrap_or("?")
            ),
            None => println!("live     nothing"),
        }
        for d in running {
            println!("running  {} {} {}", d.id, d.status, d.what());
        }
        println!(
            "health   {} {}",
            service.url.as_deref().unwrap_or("(no URL)"),
            health.unwrap_or_default()
        );
    }
    Ok(())
}

fn deploy_json(d: &Deploy) -> Value {
    json!({
        "id": d.id,
        "status": d.status.as_str(),
        "trigger": d.trigger,
        "commit": d.commit,
        "image": d.image_ref,
        "digest": d.image_sha,
        "created_at": d.created_at,
        "finished_at": d.finished_at,
    })
}

fn list(args: &flags::DeployList) -> Result<()> {
    let settings = Settings::from_env();
    let client = https::Client::new(https::Timeouts::default())?;
    let (api, service_id) = settings.api(&client)?;
    let deploys = api.deploys(&service_id, &[], args.limit)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&deploys.iter().map(deploy_json).collect::<Vec<_>>())?
        );
        return Ok(());
    }
    println!(
        "{:<28} {:<22} {:<12} {:<21} {:<21} what",
        "id", "status", "trigger", "created", "finished"
    );
    for d in &deploys {
        println!(
            "{:<28} {:<22} {:<12} {:<21} {:<21} {}",
            d.id,
            d.status.as_str(),
            d.trigger.as_deref().unwrap_or("-"),
            d.created_at.as_deref().unwrap_or("-"),
            d.finished_at.as_deref().unwrap_or("-"),
            d.what()
        );
    }
    Ok(())
}

fn logs(args: &flags::DeployLogs) -> Result<()> {
    let settings = Settings::from_env();
    let client = https::Client::new(https::Timeouts::default())?;
    let (api, service_id) = settings.api(&client)?;
    let service = api.service(&service_id)?;
    let deploy = match &args.deploy {
        Some(id) => api.deploy(&service_id, id)?,
        None => api
            .deploys(&service_id, &[], 1)?
            .into_iter()
            .next()
            .context("the service has no deploys")?,
    };
    for line in api.logs(&service, &deploy, args.tail)? {
        println!("{line}");
    }
    Ok(())
}

/// Parses `15m`, `90s`, `1h` or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, "s"), |i| text.split_at(i));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}`: expected a duration like 15m, 90s or 1h"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("`{text}`: the unit is s, m or h")),
    };
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_repositories() {
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("5 minutes").is_err());
        assert_eq!(
            repository_of("127.0.0.1:5000/app:abc"),
            "127.0.0.1:5000/app"
        );
        assert_eq!(
            repository_of("127.0.0.1:5000/app@sha256:00"),
            "127.0.0.1:5000/app"
        );
        assert_eq!(repository_of("ghcr.io/o/app"), "ghcr.io/o/app");
    }

    #[test]
    fn near_miss_env_names_are_named() {
        let names: BTreeSet<String> = [
            "DATABASE_URL",
            "SUPABASE_PROJECT_URL",
            "SUPABASE_PROJECT_ID",
            "SUPABASE_REST_KEY",
            "SUPABASE_JWT_SECRE",
        ]
        .map(str::to_owned)
        .into();
        let problems = env_var_problems(&names);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("SUPABASE_JWT_SECRE: did you mean SUPABASE_JWT_SECRET"),
            "{problems:?}"
        );
    }
}
