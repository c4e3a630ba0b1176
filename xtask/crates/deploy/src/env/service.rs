//! `env check --service` and `env push`: the Render service's variables, read and written
//! through Render's API (deploy/render.rs), compared by compare.rs.
//!
//! The values of an env file reach Render in one place only: the body of the request that
//! replaces the service's list. They are never on a command line, in a message or in --json.

use std::{collections::BTreeMap, path::Path};

use anyhow::{Context, Result, bail};
use openeu_env::{ProblemKind, Reader, Target};
use serde::Serialize;

use super::{
    EnvEntry,
    compare::{self, EnvFile},
    parse_env_entries,
};
use xtask_core::{https, progress, workspace::Workspace};

use xtask_core::render::Api;

use crate::flags;

fn read_entries(path: &Path) -> Result<Vec<EnvEntry>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    parse_env_entries(&bytes, path)
}

/// The service is production's: a preview instance inherits its variables.
fn api(ws: &Workspace) -> Result<(Api, String)> {
    let client = https::Client::new(https::Timeouts::default())?;
    xtask_core::render::service::api_from_env(ws, "production", &client)
}

fn service_vars(api: &Api, id: &str) -> Result<BTreeMap<String, String>> {
    let step = progress::step(format!("reading the env vars of Render service {id}"));
    let vars = api
        .env_vars(id)
        .with_context(|| format!("reading the env vars of Render service {id}"))?;
    step.done();
    Ok(vars)
}

/// `env push --json`: the diff (secrets masked) and what was done with it. The fields are in
/// alphabetical order, the order the keys have always been printed in.
#[derive(Serialize)]
struct PushJson<'a> {
    added: Vec<compare::AddedJson<'a>>,
    applied: bool,
    changed: Vec<compare::ChangedJson<'a>>,
    dry_run: bool,
    kept: &'a [String],
    not_pushed: &'a [String],
    removed: &'a [String],
    service: &'a str,
    target: &'static str,
    unchanged: &'a [String],
}

/// `cargo xtask env check --service [--env-file F] [--target T] [--json]`.
pub fn check(ws: &Workspace, args: &flags::EnvCheck) -> Result<()> {
    let target: Target = args.target.map_or(Target::Production, Into::into);
    let entries = args.env_file.as_deref().map(read_entries).transpose()?;
    let (api, id) = api(ws)?;
    let vars = service_vars(&api, &id)?;
    let file = match (&args.env_file, &entries) {
        (Some(path), Some(entries)) => Some(EnvFile { path, entries }),
        _ => None,
    };
    let comparison = compare::compare(target, &vars, file);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&comparison.to_json())?);
    } else {
        print!("{}", comparison.render());
    }
    if !comparison.ok() {
        let count = comparison.findings.len();
        if args.json {
            bail!(
                "{count} problem(s) with the env vars of Render service {id} (target {target}):\n  {}",
                comparison.lines().join("\n  ")
            );
        }
        bail!(
            "{count} problem(s) with the env vars of Render service {id} (target {target}); each `problem:` line above names its fix"
        );
    }
    Ok(())
}

impl flags::EnvPush {
    /// `cargo xtask env push --env-file F [--target T] [--dry-run] [--prune] [--json]`.
    pub fn run(self, ws: &Workspace) -> Result<()> {
        let target: Target = self.target.map_or(Target::Production, Into::into);
        let path = &self.env_file;
        // The file first: a bad one is refused before any request.
        let entries = read_entries(path)?;
        let (desired, left_out) = compare::service_vars_of_file(EnvFile {
            path,
            entries: &entries,
        })?;
        for item in &left_out {
            progress::note(format!("not pushed: {item}"));
        }
        let (api, id) = api(ws)?;
        let current = service_vars(&api, &id)?;
        let diff = compare::diff(&current, &desired, self.prune);

        // The service must hold the target's required variables afterwards.
        let after = |name: &str| diff.result.get(name).cloned();
        let missing: Vec<String> = openeu_env::check(target, Reader::Service, after)
            .into_iter()
            .filter(|p| p.kind == ProblemKind::Missing)
            .map(|p| {
                let why = if self.prune || !current.contains_key(&p.name) {
                    format!("{} lacks it", path.display())
                } else {
                    "the service lacks it".to_owned()
                };
                format!(
                    "{} is required for {target} and {why}: add {}=… to {}",
                    p.name,
                    p.name,
                    path.display()
                )
            })
            .collect();
        if !missing.is_empty() {
            bail!(
                "after this push the service would lack {} required variable(s); nothing was sent:\n  {}",
                missing.len(),
                missing.join("\n  ")
            );
        }

        // The diff first, then the write.
        if !self.json {
            println!("service {id}, target {target}, from {}:", path.display());
            for line in diff.lines() {
                println!("{line}");
            }
            println!(
                "{} added, {} changed, {} removed, {} kept, {} unchanged",
                diff.added.len(),
                diff.changed.len(),
                diff.removed.len(),
                diff.kept.len(),
                diff.unchanged.len()
            );
        }
        let applied = if diff.is_empty() || self.dry_run {
            false
        } else {
            let step = progress::step(format!(
                "replacing the env vars of Render service {id} ({} added, {} changed, {} removed, in one request)",
                diff.added.len(),
                diff.changed.len(),
                diff.removed.len()
            ));
            let now = api.replace_env_vars(&id, &diff.result)?;
            if now.keys().ne(diff.result.keys()) {
                bail!(
                    "Render answered the update of service {id} with other names than were sent; check it with `cargo xtask env check --service`"
                );
            }
            step.done();
            true
        };
        if self.json {
            let value = PushJson {
                added: diff.added_json(),
                applied,
                changed: diff.changed_json(),
                dry_run: self.dry_run,
                kept: &diff.kept,
                not_pushed: &left_out,
                removed: &diff.removed,
                service: &id,
                target: target.name(),
                unchanged: &diff.unchanged,
            };
            println!("{}", serde_json::to_string_pretty(&value)?);
        } else if diff.is_empty() {
            println!("nothing to change");
        } else if self.dry_run {
            println!("dry run: nothing was sent");
        } else {
            println!(
                "applied; running instances keep their environment until the next deploy (`cargo xtask deploy`)"
            );
        }
        Ok(())
    }
}
