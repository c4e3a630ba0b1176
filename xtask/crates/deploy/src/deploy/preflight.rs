//! Deploy's preflight: every check before anything changes, all problems reported at once
//! (clean tree, generated files current, the API key, the service and its env var names, no
//! deploy in progress, registry credentials, the deploy lock, pending migrations applying
//! cleanly). A dry run reports some of them as notes instead.

use std::collections::BTreeSet;

use anyhow::Result;

use super::{exit, fail, lock, settings::Settings};
use xtask_core::{
    docker::{Docker, registry},
    https, progress,
    render::{self, Deploy, Kind, Service, Status, service::env},
    workspace::{self, Workspace},
};
use xtask_data::db::push::{self, Conn};
use xtask_images::base;

use crate::{
    env::compare::{self, Comparison},
    flags,
};

/// What preflight found out, for the later phases.
pub(super) struct Preflight {
    pub(super) service: Service,
    pub(super) head: String,
    pub(super) live: Option<Deploy>,
    pub(super) running: Vec<Deploy>,
    pub(super) known: BTreeSet<String>,
    pub(super) plan: push::Plan,
    pub(super) conn: Conn,
    /// What a dry run reports instead of refusing (e.g. a base push that is needed).
    pub(super) notes: Vec<String>,
    /// The service's variables against the env spec (`env check --service`'s comparison).
    pub(super) env: Option<Comparison>,
    /// Held until the deploy ends (dropped with the preflight).
    pub(super) _lock: Option<lock::Lock>,
}

/// What the preflight read of the Render service.
#[derive(Default)]
struct ServiceState {
    service: Option<Service>,
    live: Option<Deploy>,
    running: Vec<Deploy>,
    known: BTreeSet<String>,
    env: Option<Comparison>,
}

impl flags::DeployRun {
    /// Every check before anything changes; all problems are reported at once.
    pub(super) fn preflight(
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
        let head = self.git_checks(ws, &mut problems);
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

        let mut notes = Vec::new();
        let ServiceState {
            service,
            live,
            running,
            known,
            env,
        } = self.service_checks(ws, settings, client, docker, &mut problems, &mut notes);

        let (plan, conn, held) = self.database_checks(ws, settings, &head, &mut problems);

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
            env,
            _lock: held,
        })
    }

    /// The commit that ships, and a clean tree (unless `--allow-dirty` with `--dry-run`).
    fn git_checks(&self, ws: &Workspace, problems: &mut Vec<String>) -> String {
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
        head
    }

    /// The Render side: the service (not suspended), its variables against the env spec, its
    /// deploys (the live one, any in progress) and where its image or commit comes from.
    fn service_checks(
        &self,
        ws: &Workspace,
        settings: &Settings,
        client: &https::Client,
        docker: &Docker<'_>,
        problems: &mut Vec<String>,
        notes: &mut Vec<String>,
    ) -> ServiceState {
        let mut state = ServiceState::default();
        if let Ok((api, id)) = settings.api(client) {
            match api.service(&id) {
                Ok(found) => {
                    if found.suspended {
                        problems.push(format!(
                            "service {} ({id}) is suspended; resume it in the Render dashboard first",
                            found.name
                        ));
                    }
                    match api.env_vars(&id) {
                        Ok(vars) => {
                            let found = env_vars(settings.spec_target, &vars);
                            problems.extend(found.problems);
                            notes.extend(found.notes);
                            state.env = Some(found.comparison);
                        }
                        Err(err) => {
                            problems.push(format!("reading the service's env vars: {err:#}"));
                        }
                    }
                    match api.deploys(&id, &[], 20) {
                        Ok(deploys) => {
                            state.known = deploys.iter().map(|d| d.id.clone()).collect();
                            state.live = deploys.iter().find(|d| d.status == Status::Live).cloned();
                            state.running = deploys
                                .into_iter()
                                .filter(|d| d.status.in_progress())
                                .collect();
                        }
                        Err(err) => problems.push(format!("listing deploys: {err:#}")),
                    }
                    if !state.running.is_empty() && !self.wait_for_running && !self.dry_run {
                        let names: Vec<String> = state
                            .running
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
                    state.service = Some(found);
                }
                Err(err) => problems.push(format!("{err:#}")),
            }
        }
        state
    }

    /// The production database: its URL, the deploy lock (one deploy at a time), the pending
    /// migrations and whether they apply (checked in a transaction that is rolled back).
    fn database_checks(
        &self,
        ws: &Workspace,
        settings: &Settings,
        head: &str,
        problems: &mut Vec<String>,
    ) -> (Option<push::Plan>, Option<Conn>, Option<lock::Lock>) {
        let mut plan = None;
        let mut conn = None;
        let mut held = None;
        if let Some(url) = &settings.db_url {
            match Conn::from_url(url) {
                Ok(c) => {
                    let holder = lock::Holder {
                        who: who(),
                        commit: render::short(head).to_owned(),
                        service: settings.service_id().unwrap_or_default().to_owned(),
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
        (plan, conn, held)
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
pub(super) fn who() -> String {
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
        xtask_data::seed::render_workspace(ws),
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
/// The service's variables against the env spec, by the one comparison `env check --service`
/// uses: a required variable that is missing (with "did you mean" for a near miss that is set)
/// or malformed refuses the deploy; an unknown variable, or one the service does not read, is
/// a note (the deploy goes on, the plan shows it).
pub(super) struct EnvFindings {
    pub(super) comparison: Comparison,
    pub(super) problems: Vec<String>,
    pub(super) notes: Vec<String>,
}

pub(super) fn env_vars(
    target: openeu_env::Target,
    vars: &std::collections::BTreeMap<String, String>,
) -> EnvFindings {
    let comparison = compare::compare(target, vars, None);
    let (mut problems, mut notes) = (Vec::new(), Vec::new());
    for finding in &comparison.findings {
        match finding.kind {
            compare::Kind::Missing { .. } | compare::Kind::Malformed(_) => {
                problems.push(format!("the service's env vars: {}", finding.line()));
            }
            _ => notes.push(format!("the service's env vars: {}", finding.line())),
        }
    }
    EnvFindings {
        comparison,
        problems,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories() {
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
    fn near_miss_env_names_are_named_and_unknown_ones_are_notes() {
        let vars: std::collections::BTreeMap<String, String> = [
            (
                "DATABASE_URL",
                "postgresql://u:p@db.example.com:5432/postgres",
            ),
            ("SUPABASE_PROJECT_URL", "https://proj.supabase.co"),
            ("SUPABASE_PROJECT_ID", "proj"),
            ("SUPABASE_REST_KEY", "key"),
            ("SUPABASE_JWT_SECRE", "canary-secret-value"),
            ("LEGACY_FLAG", "1"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .into();
        let found = env_vars(openeu_env::Target::Production, &vars);
        assert_eq!(found.problems.len(), 1, "{:?}", found.problems);
        assert!(
            found.problems[0].contains("SUPABASE_JWT_SECRET")
                && found.problems[0].contains("SUPABASE_JWT_SECRE"),
            "{:?}",
            found.problems
        );
        assert!(
            found.notes.iter().any(|n| n.contains("LEGACY_FLAG")),
            "{:?}",
            found.notes
        );
        let everything = format!("{:?} {:?}", found.problems, found.notes);
        assert!(!everything.contains("canary-secret-value"), "{everything}");
    }
}
