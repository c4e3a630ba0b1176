//! The read-only subcommands: `deploy status` (the live deploy and the service's health now),
//! `deploy list` and `deploy logs`.

use anyhow::{Context, Result};
use serde::Serialize;

use super::settings::Settings;
use xtask_core::{
    https,
    render::{Deploy, Status},
    workspace::Workspace,
};

use crate::flags;

pub(super) fn status(ws: &Workspace, target: &str, args: &xtask_core::flags::Json) -> Result<()> {
    let settings = Settings::from_env(ws, target);
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
            serde_json::to_string_pretty(&StatusJson {
                health: health.as_deref(),
                in_progress: running.iter().map(|d| DeployJson::of(d)).collect(),
                live: live.map(DeployJson::of),
                service: &service.id,
                suspended: service.suspended,
                url: service.url.as_deref(),
            })?
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

/// `deploy status --json`. The fields of these documents are in alphabetical order, the order
/// their keys have always been printed in.
#[derive(Serialize)]
struct StatusJson<'a> {
    health: Option<&'a str>,
    in_progress: Vec<DeployJson<'a>>,
    live: Option<DeployJson<'a>>,
    service: &'a str,
    suspended: bool,
    url: Option<&'a str>,
}

/// A deploy in `deploy status` and `deploy list --json`; a key Render left out is null.
#[derive(Serialize)]
struct DeployJson<'a> {
    commit: Option<&'a str>,
    created_at: Option<&'a str>,
    digest: Option<&'a str>,
    finished_at: Option<&'a str>,
    id: &'a str,
    image: Option<&'a str>,
    status: &'a str,
    trigger: Option<&'a str>,
}

impl<'a> DeployJson<'a> {
    fn of(d: &'a Deploy) -> Self {
        DeployJson {
            commit: d.commit.as_deref(),
            created_at: d.created_at.as_deref(),
            digest: d.image_sha.as_deref(),
            finished_at: d.finished_at.as_deref(),
            id: &d.id,
            image: d.image_ref.as_deref(),
            status: d.status.as_str(),
            trigger: d.trigger.as_deref(),
        }
    }
}

pub(super) fn list(ws: &Workspace, target: &str, args: &flags::DeployList) -> Result<()> {
    let settings = Settings::from_env(ws, target);
    let client = https::Client::new(https::Timeouts::default())?;
    let (api, service_id) = settings.api(&client)?;
    let deploys = api.deploys(&service_id, &[], args.limit)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&deploys.iter().map(DeployJson::of).collect::<Vec<_>>())?
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

pub(super) fn logs(ws: &Workspace, target: &str, args: &flags::DeployLogs) -> Result<()> {
    let settings = Settings::from_env(ws, target);
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
