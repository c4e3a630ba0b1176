//! Remote previews: a Supabase branch (Management API, `git_branch` set) and a Render preview
//! instance of the service, paired by name: the Render preview of git branch `b` is called
//! `<service>-preview-<slug(b)>`, so `list` and `gc` pair the two sides without an extra
//! request per preview, and see orphans on either side.
//!
//! `up` makes the Supabase branch (or reuses it) and waits until its project is up and its
//! migrations passed; then the Render preview from the pushed image. Render's preview endpoint
//! takes only an image, a name and a plan, and the new instance starts with the base service's
//! variables, production's `DATABASE_URL` among them: its first deploy is cancelled, the
//! variables that make the service resolve its branch database are set (`IS_PULL_REQUEST`,
//! `RENDER_GIT_BRANCH`, `ENVIRONMENT`, `SUPABASE_PROJECT_ID`) and `DATABASE_URL` removed, and only
//! then is it deployed, waited on and checked.
//!
//! Credentials (`RENDER_API_KEY`, `SUPABASE_REST_KEY`) come from the environment and go into
//! Authorization headers only.

use std::{
    collections::BTreeSet,
    io::{BufRead, IsTerminal, Write},
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use super::{local, names};
use xtask_core::{
    https, progress,
    render::{self, Api, Kind, Source, Status},
    supabase::{self, Branch, Supabase},
    time,
    workspace::Workspace,
};
use xtask_stack::smoke;

use crate::flags;

const RENDER_API_KEY: &str = "RENDER_API_KEY";
const RENDER_SERVICE_ID: &str = "RENDER_SERVICE_ID";
const RENDER_API_URL: &str = "RENDER_API_URL";
const SUPABASE_TOKEN: &str = "SUPABASE_REST_KEY";
const SUPABASE_PROJECT: &str = "SUPABASE_PROJECT_ID";
const SUPABASE_API_URL: &str = "SUPABASE_API_URL";

/// The fastest the waits poll; slower when a rate limit is nearly spent.
const MIN_POLL: Duration = Duration::from_millis(250);

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Both APIs and what they act on.
struct Remote {
    render: Api,
    service_id: String,
    supabase: Supabase,
    project: String,
    supabase_url: String,
}

impl Remote {
    /// From the environment; every missing variable named at once, with what it is.
    fn from_env() -> Result<Remote> {
        let missing: Vec<String> = [
            RENDER_API_KEY,
            RENDER_SERVICE_ID,
            SUPABASE_TOKEN,
            SUPABASE_PROJECT,
        ]
        .iter()
        .filter(|name| env(name).is_none())
        .map(|name| {
            format!(
                "{name} is not set: {}",
                openeu_env::var(name).map_or("", |v| v.description)
            )
        })
        .collect();
        if !missing.is_empty() {
            bail!(
                "remote previews need Render's and Supabase's APIs:\n  {}",
                missing.join("\n  ")
            );
        }
        let client = https::Client::new(https::Timeouts::default())?;
        let supabase_url =
            env(SUPABASE_API_URL).unwrap_or_else(|| supabase::DEFAULT_API_URL.into());
        Ok(Remote {
            render: Api::new(
                &env(RENDER_API_URL).unwrap_or_else(|| render::DEFAULT_API_URL.to_owned()),
                &env(RENDER_API_KEY).unwrap_or_default(),
                client.clone(),
            ),
            service_id: env(RENDER_SERVICE_ID).unwrap_or_default(),
            supabase: Supabase::new(
                &supabase_url,
                &env(SUPABASE_TOKEN).unwrap_or_default(),
                client,
            ),
            project: env(SUPABASE_PROJECT).unwrap_or_default(),
            supabase_url,
        })
    }

    /// How long to wait before the next poll: the minimum, or longer when either API's
    /// remaining requests are few before its reset.
    fn pace(&self) -> Duration {
        let mut wait = MIN_POLL;
        for rate in [self.render.rate.get(), self.supabase.rate.get()]
            .into_iter()
            .flatten()
        {
            let (remaining, reset) = rate;
            if remaining < 5 {
                wait = wait.max(reset / (remaining as u32 + 1));
            }
        }
        wait
    }
}

/// The Render preview's name for `branch`.
pub fn render_name(service: &str, branch: &str) -> String {
    format!("{service}-preview-{}", names::slug(branch))
}

/// `<registry>/<name>` of an image reference (tag and digest dropped).
fn repository(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => &image[..i],
        _ => image,
    }
}

pub fn up(ws: &Workspace, args: &flags::PreviewUp) -> Result<()> {
    let started = Instant::now();
    let branch = match &args.branch {
        Some(branch) => branch.clone(),
        None => local::current_branch(ws)?,
    };
    let remote = Remote::from_env()?;
    let service = remote.render.service(&remote.service_id)?;
    let Kind::Image { image_path } = &service.kind else {
        bail!(
            "Render's preview endpoint works only for image-backed services, and {} ({}) is built from Git: use Render's own pull-request previews (previews in render.yaml) for it",
            service.name,
            service.id
        );
    };
    let image = match &args.image {
        Some(image) => image.clone(),
        None => {
            let sha = crate::preview::local::branch_commit(ws, &branch)?;
            format!("{}:{}", repository(image_path), &sha[..12])
        }
    };

    // 1. The Supabase branch, made or reused, and waited on.
    let step = progress::step(format!("Supabase branch for {branch}"));
    let existing = remote
        .supabase
        .branches(&remote.project)?
        .into_iter()
        .find(|b| b.git() == branch && !b.is_default);
    let db_branch = match existing {
        Some(found) => {
            step.done_with(&format!("exists: {} ({})", found.name, found.project_ref));
            found
        }
        None => {
            let made = remote
                .supabase
                .create_branch(&remote.project, &branch, &branch)?;
            step.done_with(&format!("created {} ({})", made.name, made.project_ref));
            made
        }
    };
    let db_branch = wait_branch(&remote, &db_branch, args.timeout)?;

    // 2. The Render preview, made or reused; its variables; a deploy with them.
    let name = render_name(&service.name, &branch);
    let step = progress::step(format!("Render preview {name} of {image}"));
    let found = remote
        .render
        .preview_services(&service.id)?
        .into_iter()
        .find(|s| s["name"].as_str() == Some(name.as_str()));
    let preview = match found {
        Some(preview) => preview,
        None => {
            let (preview, first) =
                remote
                    .render
                    .create_preview(&service.id, &image, &name, None)?;
            // It starts with the base service's variables (production's database among them):
            // the first deploy must not go live.
            if let (Some(first), Some(id)) = (first, preview["id"].as_str()) {
                let _ = remote.render.cancel(id, &first);
            }
            preview
        }
    };
    let preview_id = preview["id"]
        .as_str()
        .context("Render sent a preview service without an id")?
        .to_owned();
    let url = preview["serviceDetails"]["url"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("Render's preview {preview_id} has no URL"))?;
    let mut vars = vec![
        ("IS_PULL_REQUEST", "true".to_owned()),
        ("ENVIRONMENT", "preview".to_owned()),
        ("RENDER_GIT_BRANCH", branch.clone()),
        (SUPABASE_PROJECT, remote.project.clone()),
    ];
    if remote.supabase_url != supabase::DEFAULT_API_URL {
        vars.push((SUPABASE_API_URL, remote.supabase_url.clone()));
    }
    for (key, value) in &vars {
        remote.render.set_env_var(&preview_id, key, value)?;
    }
    remote.render.delete_env_var(&preview_id, "DATABASE_URL")?;
    step.done_with(&preview_id);

    let step = progress::step(format!(
        "deploying {preview_id} with the branch's variables"
    ));
    let known: BTreeSet<String> = remote
        .render
        .deploys(&preview_id, &[], 20)?
        .into_iter()
        .map(|d| d.id)
        .collect();
    let source = Source::Image {
        url: image.clone(),
        digest: String::new(),
    };
    let deploy = remote.render.trigger(&preview_id, &source, &known)?;
    wait_live(&remote, &preview_id, &deploy.id, args.timeout)?;
    step.done();
    if !args.skip_smoke {
        smoke::verify_url(ws, &url)?;
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&UpJson {
                branch: &branch,
                deploy: &deploy.id,
                image: &image,
                render_service: &preview_id,
                seconds: started.elapsed().as_secs_f64(),
                smoke: !args.skip_smoke,
                supabase_branch: &db_branch.project_ref,
                supabase_status: &db_branch.status,
                url: &url,
            })?
        );
    } else {
        println!("{url}");
    }
    eprintln!(
        "    remote preview of {branch} live in {:.1}s; it costs money while it lives: `cargo xtask preview down --remote {branch}`",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Waits until the branch's project is `ACTIVE_HEALTHY` and its migrations passed; stops at a
/// failed migration or a project that will not come up, saying what to do.
fn wait_branch(remote: &Remote, branch: &Branch, timeout: Duration) -> Result<Branch> {
    let started = Instant::now();
    let mut said = String::new();
    loop {
        let project = remote.supabase.project_status(&branch.project_ref)?;
        let current = remote
            .supabase
            .branches(&remote.project)?
            .into_iter()
            .find(|b| b.project_ref == branch.project_ref)
            .with_context(|| {
                format!(
                    "the Supabase branch {} ({}) disappeared while xtask waited for it",
                    branch.name, branch.project_ref
                )
            })?;
        let now = format!("project {project}, {}", current.status);
        if now != said {
            progress::note(format!(
                "Supabase branch {}: {now} ({:.1}s)",
                current.name,
                started.elapsed().as_secs_f64()
            ));
            said = now;
        }
        if supabase::FAILED.contains(&current.status.as_str()) {
            bail!(
                "the Supabase branch {} ({}) is {}: its migrations did not apply, and nothing was created on Render. \
                 Run `cargo xtask db reset` to see the failing file and line locally, fix it, push, and run `cargo xtask preview up --remote` again \
                 (the branch's logs are in the Supabase dashboard under Branches)",
                current.name,
                current.project_ref,
                current.status
            );
        }
        if supabase::PROJECT_FAILED.contains(&project.as_str()) {
            bail!(
                "the Supabase branch {} ({}) is {project} and will not come up by waiting; delete it (`cargo xtask preview down --remote {}`) and run `preview up --remote` again",
                current.name,
                current.project_ref,
                current.git()
            );
        }
        if project == "ACTIVE_HEALTHY" && supabase::PASSED.contains(&current.status.as_str()) {
            return Ok(current);
        }
        if started.elapsed() > timeout {
            bail!(
                "the Supabase branch {} is still {said} after {:.0}s (--timeout); run `preview up --remote` again to keep waiting",
                current.name,
                started.elapsed().as_secs_f64()
            );
        }
        std::thread::sleep(remote.pace());
    }
}

/// Waits until the preview's deploy is live; a failed one is an error with its status.
fn wait_live(remote: &Remote, service: &str, deploy: &str, timeout: Duration) -> Result<()> {
    let started = Instant::now();
    let mut said = String::new();
    loop {
        let current = remote.render.deploy(service, deploy)?;
        let status = current.status.as_str().to_owned();
        if status != said {
            progress::note(format!(
                "Render deploy {deploy}: {status} ({:.1}s)",
                started.elapsed().as_secs_f64()
            ));
            said.clone_from(&status);
        }
        if current.status == Status::Live {
            return Ok(());
        }
        if current.status.failed() || !current.status.in_progress() {
            bail!(
                "the Render preview's deploy {deploy} of {service} ended {status}; its logs: `cargo xtask deploy logs --deploy {deploy}` with RENDER_SERVICE_ID={service}, or the dashboard"
            );
        }
        if started.elapsed() > timeout {
            bail!(
                "the Render preview's deploy {deploy} is still {status} after {:.0}s (--timeout)",
                started.elapsed().as_secs_f64()
            );
        }
        std::thread::sleep(remote.pace());
    }
}

/// One remote preview: either side or both.
#[derive(Debug, Clone)]
struct Pair {
    git_branch: String,
    render: Option<(String, String, Option<u64>)>,
    supabase: Option<Branch>,
}

impl Pair {
    /// The git branch, `?` when neither side names one; the Render service's name and the
    /// Supabase branch's project ref, `-` for a missing side.
    fn shown(&self) -> (&str, &str, &str) {
        (
            if self.git_branch.is_empty() {
                "?"
            } else {
                &self.git_branch
            },
            self.render.as_ref().map_or("-", |r| r.1.as_str()),
            self.supabase
                .as_ref()
                .map_or("-", |b| b.project_ref.as_str()),
        )
    }

    fn created(&self) -> Option<u64> {
        let render = self.render.as_ref().and_then(|r| r.2);
        let supabase = self
            .supabase
            .as_ref()
            .and_then(|b| time::parse_rfc3339(&b.created_at));
        match (render, supabase) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn orphan(&self) -> Option<&'static str> {
        match (&self.render, &self.supabase) {
            (Some(_), None) => Some("Render preview without a Supabase branch"),
            (None, Some(_)) => Some("Supabase branch without a Render preview"),
            _ => None,
        }
    }

    fn json(&self, now: u64, price: Option<f64>) -> PairJson<'_> {
        let age = self.created().map(|c| now.saturating_sub(c));
        PairJson {
            age_seconds: age,
            estimated_cost: price
                .zip(age)
                .map(|(p, a)| (p * a as f64 / 3600.0 * 100.0).round() / 100.0),
            git_branch: &self.git_branch,
            orphan: self.orphan(),
            render_name: self.render.as_ref().map(|r| r.1.as_str()),
            render_service: self.render.as_ref().map(|r| r.0.as_str()),
            supabase_branch: self.supabase.as_ref().map(|b| b.project_ref.as_str()),
            supabase_status: self.supabase.as_ref().map(|b| b.status.as_str()),
        }
    }
}

// The `--json` documents of the remote previews. Their fields are in alphabetical order, the
// order their keys have always been printed in.

/// `preview up --remote --json`.
#[derive(Serialize)]
struct UpJson<'a> {
    branch: &'a str,
    deploy: &'a str,
    image: &'a str,
    render_service: &'a str,
    seconds: f64,
    smoke: bool,
    supabase_branch: &'a str,
    supabase_status: &'a str,
    url: &'a str,
}

/// A remote preview in `preview list --remote --json` and `gc`; what is unknown is null.
#[derive(Serialize)]
struct PairJson<'a> {
    age_seconds: Option<u64>,
    estimated_cost: Option<f64>,
    git_branch: &'a str,
    orphan: Option<&'static str>,
    render_name: Option<&'a str>,
    render_service: Option<&'a str>,
    supabase_branch: Option<&'a str>,
    supabase_status: Option<&'a str>,
}

/// `preview gc --remote --json`.
#[derive(Serialize)]
struct GcJson<'a> {
    dry_run: bool,
    kept: usize,
    never_removed: &'a [String],
    removed: Vec<PairJson<'a>>,
}

/// Render's previews of the service and Supabase's branches of the project, paired; the
/// production service and the default branch are never among them.
fn pairs(remote: &Remote, main_branch: &str) -> Result<(String, Vec<Pair>, Vec<String>)> {
    let service = remote.render.service(&remote.service_id)?;
    let previews = remote.render.preview_services(&service.id)?;
    let branches = remote.supabase.branches(&remote.project)?;
    let mut kept = vec![format!("Render service {} (production)", service.id)];
    let mut pairs: Vec<Pair> = Vec::new();
    for branch in branches {
        if branch.is_default || branch.git() == main_branch {
            kept.push(format!(
                "Supabase branch {} ({}, the default)",
                branch.name, branch.project_ref
            ));
            continue;
        }
        pairs.push(Pair {
            git_branch: branch.git().to_owned(),
            render: None,
            supabase: Some(branch),
        });
    }
    for preview in previews {
        let id = preview["id"].as_str().unwrap_or_default().to_owned();
        if id == service.id || id.is_empty() {
            continue;
        }
        let name = preview["name"].as_str().unwrap_or_default().to_owned();
        let created = preview["createdAt"].as_str().and_then(time::parse_rfc3339);
        match pairs
            .iter_mut()
            .find(|p| p.render.is_none() && render_name(&service.name, &p.git_branch) == name)
        {
            Some(pair) => pair.render = Some((id, name, created)),
            None => pairs.push(Pair {
                git_branch: String::new(),
                render: Some((id, name, created)),
                supabase: None,
            }),
        }
    }
    Ok((service.name, pairs, kept))
}

fn main_branch(ws: &Workspace) -> String {
    ["main", "master"]
        .into_iter()
        .find(|b| {
            ws.sh
                .cmd("git")
                .args([
                    "rev-parse",
                    "--verify",
                    "--quiet",
                    &format!("refs/heads/{b}"),
                ])
                .quiet()
                .ignore_stdout()
                .ignore_stderr()
                .run()
                .is_ok()
        })
        .unwrap_or("main")
        .to_owned()
}

pub fn list(ws: &Workspace, args: &flags::PreviewList) -> Result<()> {
    let remote = Remote::from_env()?;
    let (_, pairs, _) = pairs(&remote, &main_branch(ws))?;
    let now = time::now();
    let price = ws.config.preview_price_per_hour;
    if args.json {
        let all: Vec<_> = pairs.iter().map(|p| p.json(now, price)).collect();
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    if pairs.is_empty() {
        eprintln!("no remote previews");
        return Ok(());
    }
    println!(
        "{:<24} {:<28} {:<22} {:<20} {:>5} {:>9}  ORPHAN",
        "GIT BRANCH", "RENDER", "SUPABASE", "STATUS", "AGE", "COST"
    );
    let mut total = 0.0;
    for pair in &pairs {
        let age = pair.created().map(|c| now.saturating_sub(c));
        let cost = price.zip(age).map(|(p, a)| p * a as f64 / 3600.0);
        total += cost.unwrap_or(0.0);
        let (git_branch, render, supabase) = pair.shown();
        println!(
            "{:<24} {:<28} {:<22} {:<20} {:>5} {:>9}  {}",
            git_branch,
            render,
            supabase,
            pair.supabase.as_ref().map_or("-", |b| b.status.as_str()),
            age.map_or("?".to_owned(), time::format_age),
            cost.map_or("-".to_owned(), |c| format!("{c:.2}")),
            pair.orphan().unwrap_or(""),
        );
    }
    match price {
        Some(_) => eprintln!(
            "    estimated so far: {total:.2} (preview-price-per-hour in [workspace.metadata.xtask]); previews cost money for as long as they live: `cargo xtask preview gc --remote --older-than 3d`"
        ),
        None => eprintln!(
            "    set preview-price-per-hour in [workspace.metadata.xtask] of Cargo.toml for a cost estimate"
        ),
    }
    Ok(())
}

/// Asks on the terminal; without one, refuses and names --yes.
fn confirm(what: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("{what}: not deleting without a terminal to ask on; pass --yes to confirm");
    }
    eprint!("{what}? [y/N] ");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

fn delete(remote: &Remote, pair: &Pair) -> Result<()> {
    if let Some((id, _, _)) = &pair.render {
        if *id == remote.service_id {
            bail!("refusing to delete {id}: it is the production service (RENDER_SERVICE_ID)");
        }
        remote.render.delete_service(id)?;
    }
    if let Some(branch) = &pair.supabase {
        if branch.is_default {
            bail!(
                "refusing to delete the default Supabase branch {}",
                branch.project_ref
            );
        }
        remote.supabase.delete_branch(&branch.project_ref)?;
    }
    Ok(())
}

pub fn down(ws: &Workspace, args: &flags::PreviewDown) -> Result<()> {
    let remote = Remote::from_env()?;
    let main = main_branch(ws);
    if args.branch == main {
        bail!(
            "refusing to remove the remote preview of {main}: it is the main branch (production)"
        );
    }
    let (_, pairs, _) = pairs(&remote, &main)?;
    let Some(pair) = pairs.iter().find(|p| p.git_branch == args.branch) else {
        eprintln!("no remote preview of {}", args.branch);
        return Ok(());
    };
    if !args.yes && !confirm(&format!("delete the remote preview of {}", args.branch))? {
        bail!("nothing deleted");
    }
    delete(&remote, pair)?;
    println!("removed the remote preview of {}", args.branch);
    Ok(())
}

pub fn gc(ws: &Workspace, args: &flags::PreviewGc) -> Result<()> {
    let remote = Remote::from_env()?;
    let older_than = args
        .older_than
        .unwrap_or(Duration::from_secs(3 * 86_400))
        .as_secs();
    let (_, pairs, kept) = pairs(&remote, &main_branch(ws))?;
    let now = time::now();
    let stale: Vec<&Pair> = pairs
        .iter()
        .filter(|p| {
            p.created()
                .is_some_and(|c| now.saturating_sub(c) > older_than)
        })
        .collect();
    if !args.json {
        for pair in &stale {
            let (git_branch, render, supabase) = pair.shown();
            println!(
                "{} {} (render {}, supabase {}), {} old{}",
                if args.dry_run {
                    "would remove"
                } else {
                    "removing"
                },
                git_branch,
                render,
                supabase,
                time::format_age(pair.created().map_or(0, |c| now.saturating_sub(c))),
                pair.orphan()
                    .map(|o| format!(": orphan, {o}"))
                    .unwrap_or_default()
            );
        }
        for never in &kept {
            eprintln!("    never removed: {never}");
        }
    }
    if !args.dry_run
        && !stale.is_empty()
        && !args.yes
        && !confirm(&format!("delete {} remote preview(s)", stale.len()))?
    {
        bail!("nothing deleted");
    }
    if !args.dry_run {
        for pair in &stale {
            delete(&remote, pair)?;
        }
    }
    if args.json {
        let price = ws.config.preview_price_per_hour;
        println!(
            "{}",
            serde_json::to_string_pretty(&GcJson {
                dry_run: args.dry_run,
                kept: pairs.len() - stale.len(),
                never_removed: &kept,
                removed: stale.iter().map(|p| p.json(now, price)).collect(),
            })?
        );
    } else if stale.is_empty() {
        eprintln!("nothing older than {}", time::format_age(older_than));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
