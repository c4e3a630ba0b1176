//! `cargo xtask deploy`: ship the tested image to Render, wait until it is live, prove it, and
//! roll back when it is not. Also `deploy status | list | logs | rollback`.
//!
//! The flow (docs/deploying.md): preflight, every problem at once and nothing changed when any
//! fails (clean tree, generated files current, the API key, the service and its env var names,
//! no deploy in progress, registry credentials, the deploy lock, pending migrations applying
//! cleanly) → build the app image (image-backed services) → push it, taking the digest → apply
//! the pending migrations → trigger (`imageUrl@digest`, or `commitId` for Git-backed services)
//! → wait for a terminal status, printing each change → verify the public URL → report.
//!
//! This file holds the flow itself. Parts: settings.rs (the deploy variables), preflight.rs,
//! plan.rs (`--dry-run`), wait.rs (to a terminal status), verify.rs (post-deploy checks; the
//! smoke call site), rollback.rs, status.rs (`status`, `list`, `logs`), report.rs (phases and
//! the result), render.rs (the API client), `stub` (Render's API for tests and benchmarks, in xtask-core),
//! lock.rs (one deploy at a time), blueprint.rs (render.yaml). The migrations are `db push`'s
//! (db/push.rs). Ctrl-C belongs to xtask-core's signals.rs; wait.rs claims it while it waits.

pub mod blueprint;
pub mod lock;
mod plan;
mod preflight;
mod report;
mod rollback;
mod settings;
mod status;
pub mod verify;
mod wait;

use std::{fmt, time::Instant};

use anyhow::{Context, Result};

use xtask_core::{docker::Docker, encoding, https, progress, render, workspace::Workspace};
use xtask_data::db::push;
use xtask_images::{base, image};

use crate::flags;
use preflight::Preflight;
use render::{Kind, Source, Status};
use report::{Phases, Report};
use settings::{HOOK_URL, Settings};

/// The exit codes of `cargo xtask deploy` (and `deploy rollback`), as docs/deploying.md lists them.
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

/// How many log lines a failed deploy shows.
const FAILURE_LOG_LINES: u32 = 50;

impl flags::Deploy {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        match self.command {
            None => self.args.run(ws, &self.target),
            Some(flags::DeployCommand::Status(args)) => status::status(ws, &self.target, &args),
            Some(flags::DeployCommand::List(args)) => status::list(ws, &self.target, &args),
            Some(flags::DeployCommand::Logs(args)) => status::logs(ws, &self.target, &args),
            Some(flags::DeployCommand::Rollback(args)) => {
                rollback::command(ws, &self.target, &args)
            }
            Some(flags::DeployCommand::Blueprint(args)) => blueprint::run(ws, args.check),
        }
    }
}

impl flags::DeployRun {
    fn run(self, ws: &Workspace, target: &str) -> Result<()> {
        let started = Instant::now();
        let mut phases = Phases::default();
        let mut report = Report::new(target, self.skip_smoke, self.dry_run);
        let result = self.deploy(ws, target, &mut phases, &mut report);
        report.finish(&phases, started, &result);
        report.print(self.json, result.is_ok())?;
        result
    }

    fn deploy(
        &self,
        ws: &Workspace,
        target: &str,
        phases: &mut Phases,
        report: &mut Report,
    ) -> Result<()> {
        let settings = Settings::from_env(ws, target);
        if let Ok(service) = &settings.service {
            progress::note(format!(
                "target {target}: service {} (from {})",
                service.id, service.source
            ));
        }
        let client = https::Client::new(https::Timeouts::default())?;
        let docker = Docker::new(ws);
        let pre = phases.time("preflight", || {
            self.preflight(ws, &settings, &client, &docker)
        })?;
        let (api, service_id) = settings.api(&client)?;
        report.service = Some(pre.service.id.clone());
        report.commit = Some(pre.head.clone());
        report.url.clone_from(&pre.service.url);
        let image_backed = matches!(pre.service.kind, Kind::Image { .. });

        if self.dry_run {
            plan::print(self, &pre, image_backed, report);
            return Ok(());
        }

        if !pre.running.is_empty() {
            phases.time("wait_for_running", || {
                for running in &pre.running {
                    progress::note(format!(
                        "waiting for {} ({}) to finish first (--wait-for-running)",
                        running.id, running.status
                    ));
                    wait::wait_for(&api, &service_id, &running.id, self.timeout, false)?;
                }
                Ok(())
            })?;
        }

        // Build, smoke and push (image-backed), or nothing to build here (Git-backed).
        let source = if image_backed {
            self.ship_image(ws, &docker, phases, report)?
        } else {
            Source::Commit(pre.head.clone())
        };

        phases.time("migrate", || push::apply(ws, &pre.conn, &pre.plan.pending))?;
        report.migrations_applied = pre.plan.pending_versions();

        let deploy = phases.time("trigger", || {
            self.trigger(&settings, &client, &api, &service_id, &source, &pre)
        })?;
        report.deploy_id = Some(deploy.id.clone());

        let done = phases.time("wait", || {
            wait::wait_for(
                &api,
                &service_id,
                &deploy.id,
                self.timeout,
                self.cancel_on_interrupt,
            )
        })?;
        report.status = Some(done.status.as_str().to_owned());
        if done.status.failed() {
            let logs = api
                .logs(&pre.service, &done, FAILURE_LOG_LINES)
                .map(|lines| lines.join("\n"))
                .unwrap_or_else(|err| format!("(the logs could not be read: {err:#})"));
            return Err(fail(
                exit::FAILED,
                format!(
                    "{}; production still runs {}. The last {FAILURE_LOG_LINES} log lines:\n{logs}\nFix the cause and deploy again; `cargo xtask deploy logs --deploy {}` shows more",
                    wait::not_live(&api, &service_id, &done),
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
                format!("{}, not live", wait::not_live(&api, &service_id, &done)),
            ));
        }

        self.verify_or_roll_back(ws, &client, &api, &service_id, &pre, &done, phases, report)
    }

    /// The image to ship, pinned by digest: `--image`, or the current one built, smoke-tested
    /// (the image that ships is the image that passed) and pushed.
    fn ship_image(
        &self,
        ws: &Workspace,
        docker: &Docker<'_>,
        phases: &mut Phases,
        report: &mut Report,
    ) -> Result<Source> {
        let image_url = match &self.image {
            Some(reference) => reference.clone(),
            None => {
                let built = phases.time("build", || {
                    docker.require_engine()?;
                    // The build retags `<app>:latest`, as `up` does: under the stack's lock,
                    // like every local step. Released before smoke, whose isolated stack
                    // is its own (a second flock in this process would wait on the first).
                    let _lock = xtask_core::lock::stack(ws, "deploy")?;
                    image::build(ws, docker)
                })?;
                if !self.skip_smoke {
                    // The image that ships is the image that passed every smoke check.
                    phases.time("smoke", || {
                        xtask_stack::smoke::verify_image(ws, &built.image)
                    })?;
                    report.smoke.ran = true;
                    report.smoke.image = Some(built.image.clone());
                }
                let digest = phases.time("push", || base::push_image(ws, docker, &built.image))?;
                format!("{}@{digest}", ws.config.app_repository())
            }
        };
        let digest = image_url
            .split_once('@')
            .map(|(_, d)| d.to_owned())
            .context("--image must be pinned by digest: <registry>/<name>@sha256:…")?;
        report.image = Some(image_url.clone());
        report.digest = Some(digest.clone());
        Ok(Source::Image {
            url: image_url,
            digest,
        })
    }

    /// Starts the deploy: through Render's API, or `--via-hook` through the deploy hook and then
    /// the deploy it created.
    fn trigger(
        &self,
        settings: &Settings,
        client: &https::Client,
        api: &render::Api,
        service_id: &str,
        source: &Source,
        pre: &Preflight,
    ) -> Result<render::Deploy> {
        let step = progress::step("triggering the deploy");
        let deploy = if self.via_hook {
            let hook = settings
                .hook_url
                .as_deref()
                .with_context(|| format!("--via-hook needs {HOOK_URL}"))?;
            progress::note(format!("deploy hook {}", https::mask_query_secret(hook)));
            // An image-backed service's hook deploys the image named by `imgURL`.
            let hook = match source {
                Source::Image { url, .. } => format!(
                    "{hook}{}imgURL={}",
                    if hook.contains('?') { '&' } else { '?' },
                    encoding::percent_encode(url)
                ),
                Source::Commit(_) => hook.to_owned(),
            };
            match render::trigger_hook(client, &hook)? {
                Some(id) => api.deploy(service_id, &id)?,
                None => api
                    .deploys(service_id, &[], 20)?
                    .into_iter()
                    .find(|d| !pre.known.contains(&d.id))
                    .context("the deploy hook answered, but Render lists no new deploy")?,
            }
        } else {
            api.trigger(service_id, source, &pre.known)?
        };
        step.done_with(&format!("{} ({})", deploy.id, deploy.status));
        Ok(deploy)
    }

    /// Verifies the public URL of the live deploy; when that fails, rolls back on request
    /// (`--rollback-on-failure`) and says which exit it is.
    #[allow(clippy::too_many_arguments)]
    fn verify_or_roll_back(
        &self,
        ws: &Workspace,
        client: &https::Client,
        api: &render::Api,
        service_id: &str,
        pre: &Preflight,
        done: &render::Deploy,
        phases: &mut Phases,
        report: &mut Report,
    ) -> Result<()> {
        let url = pre
            .service
            .url
            .clone()
            .context("the service has no public URL to verify")?;
        let verified = phases.time("verify", || {
            let step = progress::step(format!("verifying {url}"));
            let result = verify::verify(
                client,
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
                report.smoke.url_checks = v.smoke;
                if v.smoke {
                    report.smoke.ran = true;
                }
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
                    rollback::roll_back(
                        api,
                        client,
                        service_id,
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
}
