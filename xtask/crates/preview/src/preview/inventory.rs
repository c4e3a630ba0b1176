//! What local previews exist, and their removal: `list` (each preview's branch, URL, state,
//! commit, age, database size and memory, read from Docker's labels), `down` (one preview) and
//! `gc` (by age, and with `--gone` those whose branch was deleted or merged). `up` is local.rs.

use std::{collections::BTreeMap, time::Duration};

use anyhow::Result;
use serde::Serialize;

use super::{
    local::{
        BRANCH_LABEL, COMMIT_LABEL, CREATED_LABEL, LABEL, Names, PORT_LABEL, ROLE_LABEL,
        STACK_LABEL, TEMPLATE_IMAGE, TEMPLATES_LOCK, git, remove_tree,
    },
    names,
};
use xtask_core::{docker::Docker, lock, process, progress, time, workspace::Workspace};

use crate::flags;

/// One preview as `list` shows it.
#[derive(Debug, Clone)]
pub struct Preview {
    pub name: String,
    pub branch: String,
    pub created: u64,
    pub port: u16,
    pub commit: String,
    pub image: String,
    pub state: String,
    pub db_bytes: Option<u64>,
    pub memory_bytes: Option<u64>,
}

impl Preview {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn json(&self, now: u64) -> PreviewJson<'_> {
        PreviewJson {
            age_seconds: now.saturating_sub(self.created),
            branch: &self.branch,
            commit: &self.commit,
            created: self.created,
            database_bytes: self.db_bytes,
            // The local development credentials of every preview database (db.rs).
            database_url: format!(
                "postgres://postgres:postgres@127.0.0.1:{}/postgres",
                self.port + names::DB_PORT_OFFSET
            ),
            image: &self.image,
            memory_bytes: self.memory_bytes,
            name: &self.name,
            state: &self.state,
            url: self.url(),
        }
    }
}

/// A local preview in `preview list --json`; the sizes are null when unknown.
#[derive(Serialize)]
pub struct PreviewJson<'a> {
    age_seconds: u64,
    branch: &'a str,
    commit: &'a str,
    created: u64,
    database_bytes: Option<u64>,
    database_url: String,
    image: &'a str,
    memory_bytes: Option<u64>,
    name: &'a str,
    state: &'a str,
    url: String,
}

/// `preview gc --json`.
#[derive(Serialize)]
struct GcJson<'a> {
    dry_run: bool,
    kept: usize,
    removed: Vec<RemovedJson<'a>>,
    templates_removed: Vec<String>,
}

#[derive(Serialize)]
struct RemovedJson<'a> {
    age_seconds: u64,
    branch: &'a str,
    name: &'a str,
    reasons: Vec<String>,
}

/// Every preview of the workspace's stack: one `docker network ls` and one `docker ps`, the
/// memory from the cgroups, the database sizes asked of all databases at once.
pub fn previews(ws: &Workspace, docker: &Docker<'_>, sizes: bool) -> Result<Vec<Preview>> {
    let stack_filter = format!("{STACK_LABEL}={}", ws.config.stack);
    let field = |key: &str| format!("{{{{.Label \"{key}\"}}}}");
    let network_format = [LABEL, BRANCH_LABEL, CREATED_LABEL, PORT_LABEL]
        .map(field)
        .join("\t");
    let mut found: BTreeMap<String, Preview> = BTreeMap::new();
    for line in docker
        .list_networks(&stack_filter, &network_format)?
        .lines()
    {
        let fields: Vec<&str> = line.split('\t').collect();
        let [name, branch, created, port] = fields.as_slice() else {
            continue;
        };
        if name.is_empty() {
            continue;
        }
        found.insert(
            (*name).to_owned(),
            Preview {
                name: (*name).to_owned(),
                branch: (*branch).to_owned(),
                created: created.parse().unwrap_or(0),
                port: port.parse().unwrap_or(0),
                commit: String::new(),
                image: String::new(),
                state: "stopped".to_owned(),
                db_bytes: None,
                memory_bytes: None,
            },
        );
    }
    // The databases are asked their size while docker is asked about the containers.
    std::thread::scope(|scope| -> Result<()> {
        let asked: Vec<_> = found
            .values()
            .filter(|_| sizes)
            .map(|p| {
                let (name, port) = (p.name.clone(), p.port + names::DB_PORT_OFFSET);
                scope.spawn(move || (name, database_size(port)))
            })
            .collect();
        containers_into(docker, &stack_filter, &mut found)?;
        for handle in asked {
            if let Ok((name, Some(size))) = handle.join()
                && let Some(preview) = found.get_mut(&name)
                && preview.state != "stopped"
            {
                preview.db_bytes = Some(size);
            }
        }
        Ok(())
    })?;
    Ok(found.into_values().collect())
}

/// Fills in what the containers say: image, commit, state, memory.
fn containers_into(
    docker: &Docker<'_>,
    stack_filter: &str,
    found: &mut BTreeMap<String, Preview>,
) -> Result<()> {
    let field = |key: &str| format!("{{{{.Label \"{key}\"}}}}");
    let container_format = format!(
        "{{{{.ID}}}}\t{}\t{}\t{}\t{{{{.Image}}}}\t{{{{.State}}}}\t{{{{.Status}}}}",
        field(LABEL),
        field(ROLE_LABEL),
        field(COMMIT_LABEL)
    );
    struct Container {
        id: String,
        preview: String,
        role: String,
        running: bool,
        healthy: bool,
        starting: bool,
    }
    let mut containers = Vec::new();
    for line in docker
        .list_containers(stack_filter, &container_format)?
        .lines()
    {
        let fields: Vec<&str> = line.split('\t').collect();
        let [id, preview, role, commit, image, state, status] = fields.as_slice() else {
            continue;
        };
        let Some(entry) = found.get_mut(*preview) else {
            continue;
        };
        if *role == "api" {
            entry.image = (*image).to_owned();
            entry.commit = (*commit).to_owned();
        }
        // `127.0.0.1:32771->5432/tcp`
        containers.push(Container {
            id: (*id).to_owned(),
            preview: (*preview).to_owned(),
            role: (*role).to_owned(),
            running: *state == "running",
            healthy: status.contains("(healthy)"),
            starting: status.contains("health: starting"),
        });
    }
    let running: Vec<String> = containers
        .iter()
        .filter(|c| c.running)
        .map(|c| c.id.clone())
        .collect();
    let memory = docker.memory_use(&running)?;
    for preview in found.values_mut() {
        let mine: Vec<&Container> = containers
            .iter()
            .filter(|c| c.preview == preview.name)
            .collect();
        let all_running = ["db", "api"]
            .iter()
            .all(|role| mine.iter().any(|c| c.role == *role && c.running));
        preview.state = if !all_running {
            "stopped"
        } else if mine.iter().all(|c| c.healthy) {
            "healthy"
        } else if mine.iter().all(|c| c.healthy || c.starting) {
            "starting"
        } else {
            "unhealthy"
        }
        .to_owned();
        let used: u64 = mine.iter().filter_map(|c| memory.get(&c.id)).sum();
        preview.memory_bytes = (used > 0).then_some(used);
    }
    Ok(())
}

/// `pg_database_size` of a preview's database, through its loopback port.
fn database_size(port: u16) -> Option<u64> {
    // Debian's /usr/bin/psql is a Perl wrapper that costs more than the query: the binary of
    // the PostgreSQL that setup installs, when it is there.
    let direct = std::path::Path::new("/usr/lib/postgresql/15/bin/psql");
    let mut cmd = process::command(if direct.exists() {
        direct.as_os_str()
    } else {
        std::ffi::OsStr::new("psql")
    });
    cmd.args([
        "-X",
        "-At",
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-U",
        "postgres",
        "-d",
        "postgres",
        "-c",
        "select pg_database_size(current_database())",
    ])
    // The local development password of every preview database (db.rs).
    .env("PGPASSWORD", "postgres")
    .env("PGCONNECT_TIMEOUT", "3");
    let out = process::output_with_timeout(cmd, None, Duration::from_secs(5)).ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

pub fn list(ws: &Workspace, args: &flags::PreviewList) -> Result<()> {
    let docker = Docker::new(ws);
    // The engine is asked only when listing fails: `list` is meant to be fast.
    let previews = match previews(ws, &docker, true) {
        Ok(previews) => previews,
        Err(err) => {
            docker.require_engine()?;
            return Err(err);
        }
    };
    let now = time::now();
    if args.json {
        let all: Vec<_> = previews.iter().map(|p| p.json(now)).collect();
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(());
    }
    if previews.is_empty() {
        eprintln!("no previews; `cargo xtask preview up [--branch NAME]` starts one");
        return Ok(());
    }
    println!(
        "{:<24} {:<24} {:<10} {:<14} {:>5} {:>11} {:>11}  IMAGE",
        "BRANCH", "URL", "STATE", "COMMIT", "AGE", "DATABASE", "MEMORY"
    );
    for p in &previews {
        println!(
            "{:<24} {:<24} {:<10} {:<14} {:>5} {:>11} {:>11}  {}",
            p.branch,
            p.url(),
            p.state,
            p.commit.get(..12).unwrap_or(&p.commit),
            time::format_age(now.saturating_sub(p.created)),
            p.db_bytes.map_or("-".to_owned(), names::format_mib),
            p.memory_bytes.map_or("-".to_owned(), names::format_mib),
            if p.image.is_empty() { "-" } else { &p.image },
        );
    }
    Ok(())
}

/// Removes every container, the network and the volume of the preview `name`.
fn remove(ws: &Workspace, docker: &Docker<'_>, name: &str) -> Result<()> {
    let _lock = lock::named(ws, name, "preview down")?;
    let label = format!("{LABEL}={name}");
    docker.remove_labelled_containers(&label)?;
    docker.remove_labelled_networks_and_volumes(&label)?;
    remove_tree(ws, name);
    Ok(())
}

pub fn down(ws: &Workspace, args: &flags::PreviewDown) -> Result<()> {
    let docker = Docker::new(ws);
    docker.require_engine()?;
    let names = Names::new(ws, &args.branch);
    let exists = docker.network_labels(&names.preview)?.is_some();
    let step = progress::step(format!("removing the preview of {}", args.branch));
    remove(ws, &docker, &names.preview)?;
    step.done();
    if !exists {
        progress::note(format!(
            "there was no preview of {} (`cargo xtask preview list` shows those there are)",
            args.branch
        ));
    }
    Ok(())
}

/// Whether a branch is gone, and why (deleted, merged).
type GoneCheck<'a> = &'a dyn Fn(&str) -> Option<&'static str>;

/// Why `gc` removes a preview.
fn reasons(
    preview: &Preview,
    now: u64,
    older_than: Option<Duration>,
    gone: Option<GoneCheck<'_>>,
) -> Vec<String> {
    let mut why = Vec::new();
    let age = now.saturating_sub(preview.created);
    if let Some(limit) = older_than
        && age > limit.as_secs()
    {
        why.push(format!(
            "older than {} ({})",
            time::format_age(limit.as_secs()),
            time::format_age(age)
        ));
    }
    if let Some(gone) = gone
        && let Some(reason) = gone(&preview.branch)
    {
        why.push(reason.to_owned());
    }
    why
}

/// The main branch: `main`, else `master`, when the repository has one.
fn main_branch(ws: &Workspace) -> Option<String> {
    ["main", "master"]
        .into_iter()
        .find(|b| {
            git(
                ws,
                &[
                    "rev-parse",
                    "--verify",
                    "--quiet",
                    &format!("refs/heads/{b}"),
                ],
            )
            .is_ok()
        })
        .map(str::to_owned)
}

pub fn gc(ws: &Workspace, args: &flags::PreviewGc) -> Result<()> {
    let docker = Docker::new(ws);
    docker.require_engine()?;
    let older_than = match (args.older_than, args.gone) {
        (None, false) => Some(Duration::from_secs(3 * 86_400)),
        (age, _) => age,
    };
    let main = main_branch(ws);
    let gone_check = |branch: &str| -> Option<&'static str> {
        let reference = format!("refs/heads/{branch}");
        if git(ws, &["rev-parse", "--verify", "--quiet", &reference]).is_err() {
            return Some("branch deleted");
        }
        let main = main.as_deref()?;
        if branch == main {
            return None;
        }
        // A branch just made from the main branch (its tip is the main branch's) is new work,
        // not merged work: only a tip behind the main branch counts as merged.
        let tip = |r: &str| git(ws, &["rev-parse", r]).ok();
        if tip(&reference) == tip(&format!("refs/heads/{main}")) {
            return None;
        }
        git(
            ws,
            &[
                "merge-base",
                "--is-ancestor",
                &reference,
                &format!("refs/heads/{main}"),
            ],
        )
        .is_ok()
        .then_some("branch merged")
    };
    let now = time::now();
    let previews = previews(ws, &docker, false)?;
    let mut removed = Vec::new();
    for preview in &previews {
        let why = reasons(
            preview,
            now,
            older_than,
            args.gone
                .then_some(&gone_check as &dyn Fn(&str) -> Option<&'static str>),
        );
        if why.is_empty() {
            continue;
        }
        if !args.json {
            println!(
                "{} {} ({}): {}",
                if args.dry_run {
                    "would remove"
                } else {
                    "removed"
                },
                preview.branch,
                preview.name,
                why.join(", ")
            );
        }
        if !args.dry_run {
            remove(ws, &docker, &preview.name)?;
        }
        removed.push(RemovedJson {
            age_seconds: now.saturating_sub(preview.created),
            branch: &preview.branch,
            name: &preview.name,
            reasons: why,
        });
    }
    let templates = match older_than {
        Some(age) => prune_templates(ws, &docker, now, age, args.dry_run, args.json)?,
        None => Vec::new(),
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&GcJson {
                dry_run: args.dry_run,
                kept: previews.len() - removed.len(),
                removed,
                templates_removed: templates,
            })?
        );
    } else if removed.is_empty() {
        eprintln!("nothing to remove ({} preview(s) kept)", previews.len());
    }
    Ok(())
}

/// Removes the database templates older than `age` that no container uses (any stack's: the
/// engine refuses to remove an image a container runs, and nothing here forces it). A template
/// is a cache: the next `up` that needs it builds it again.
fn prune_templates(
    ws: &Workspace,
    docker: &Docker<'_>,
    now: u64,
    age: Duration,
    dry_run: bool,
    json: bool,
) -> Result<Vec<String>> {
    let _lock = lock::named(ws, TEMPLATES_LOCK, "preview gc")?;
    let mut removed = Vec::new();
    for line in docker
        .list_images(TEMPLATE_IMAGE, "{{.Repository}}:{{.Tag}}\t{{.CreatedAt}}")?
        .lines()
    {
        let Some((reference, created)) = line.split_once('\t') else {
            continue;
        };
        let Some(created) = docker_time(created) else {
            continue;
        };
        if now.saturating_sub(created) <= age.as_secs() {
            continue;
        }
        let in_use = !docker
            .list_containers_of_image(reference)?
            .trim()
            .is_empty();
        if in_use {
            continue;
        }
        if !dry_run && !docker.remove_image_if_unused(reference)? {
            continue;
        }
        if !json {
            println!(
                "{} the database template {reference} (unused, {} old)",
                if dry_run { "would remove" } else { "removed" },
                time::format_age(now.saturating_sub(created))
            );
        }
        removed.push(reference.to_owned());
    }
    Ok(removed)
}

/// `2026-11-29 10:56:31 +0000 UTC` (docker's `CreatedAt`) in Unix seconds.
fn docker_time(text: &str) -> Option<u64> {
    let mut words = text.split_whitespace();
    let (date, time, offset) = (words.next()?, words.next()?, words.next()?);
    if offset.len() != 5 {
        return None;
    }
    time::parse_rfc3339(&format!("{date}T{time}{}:{}", &offset[..3], &offset[3..]))
}

#[cfg(test)]
mod tests;
