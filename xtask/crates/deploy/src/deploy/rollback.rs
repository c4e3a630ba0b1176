//! Rolling back: to a named deploy, or to the newest earlier deploy that went live with a
//! different commit or image; waited for and verified like a deploy. Migrations are not rolled
//! back. Used by `deploy rollback` and by `deploy --rollback-on-failure`.

use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

use super::{exit, fail, lock, preflight::who, settings::Settings, verify, wait::wait_for};
use xtask_core::{
    https, progress,
    render::{Api, Deploy, Service, Status},
    workspace::Workspace,
};
use xtask_data::db::push::Conn;

use crate::flags;

/// Rolls back to `target`, waits for it and verifies it serves.
pub(super) fn roll_back(
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
            format!(
                "the rollback did not go live: {}",
                super::wait::not_live(api, service_id, &done)
            ),
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

pub(super) fn command(ws: &Workspace, target: &str, args: &flags::DeployRollback) -> Result<()> {
    let settings = Settings::from_env(ws, target);
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
            serde_json::to_string_pretty(&RollbackJson {
                deploy_id: &done.id,
                rolled_back_to: &target.id,
                status: done.status.as_str(),
            })?
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

/// `deploy rollback --json`, keys in alphabetical order as they have always been printed.
#[derive(Serialize)]
struct RollbackJson<'a> {
    deploy_id: &'a str,
    rolled_back_to: &'a str,
    status: &'a str,
}
