//! Local previews: one isolated stack per git branch, side by side with the developer's own.
//!
//! `up` checks the branch's commit out into a scratch `git worktree` under the target directory
//! (the user's working tree is never touched), builds its app image there (hash-gated: a branch
//! whose sources equal another's reuses its image), and makes its database *template*: the
//! local database image with that branch's migrations and seed applied, committed as an image
//! tagged by the hash of what went into it. Every preview with equal migrations and seed shares
//! the template, and a new preview's data volume is filled from it by a copy, not by replaying
//! SQL: that is why a second preview starts faster than the first.
//!
//! Each preview's network is its anchor: it carries the branch, the creation time and the port,
//! so `up` again (after a restart, or after being killed at any step) finds them and converges:
//! every object has a fixed name derived from the branch, and is created only when it is
//! missing or stale. `list`, `down` and `gc` find previews by label, never by name.

use std::{
    collections::BTreeSet,
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::names;
use xtask_core::{
    docker::{Docker, Run},
    failpoint,
    files::hex,
    http, lock, owner, process, progress, time,
    workspace::Workspace,
};
use xtask_data::{db, seed};
use xtask_images::image;
use xtask_setup::setup;
use xtask_stack::{smoke, stack};

use crate::flags;

/// On every object of a preview: its name (`<stack>-preview-<slug>`, the network's name).
pub const LABEL: &str = "org.openeu.preview";
/// The stack the preview belongs to (a test's previews never show in a developer's list).
pub const STACK_LABEL: &str = "org.openeu.preview.stack";
pub const BRANCH_LABEL: &str = "org.openeu.preview.branch";
/// Unix seconds; what `gc --older-than` reads.
pub const CREATED_LABEL: &str = "org.openeu.preview.created";
pub const PORT_LABEL: &str = "org.openeu.preview.port";
pub const COMMIT_LABEL: &str = "org.openeu.preview.commit";
pub const ROLE_LABEL: &str = "org.openeu.preview.role";
/// On a database template image: the hash of what went into it.
pub const TEMPLATE_LABEL: &str = "org.openeu.preview.template";

/// The repository of the database templates.
pub(super) const TEMPLATE_IMAGE: &str = "openeu-preview-db";
/// The machine-wide lock between using a template and pruning it.
pub(super) const TEMPLATES_LOCK: &str = "preview-templates";

/// PostgreSQL settings for a small preview database (ALTER SYSTEM, baked into the template):
/// the defaults size the server for a machine of its own; five previews share this one.
const DB_SETTINGS: &[(&str, &str)] = &[
    ("shared_buffers", "16MB"),
    ("max_connections", "24"),
    ("work_mem", "2MB"),
    ("maintenance_work_mem", "16MB"),
    ("wal_buffers", "512kB"),
    ("max_worker_processes", "2"),
    ("max_parallel_workers", "0"),
    ("max_parallel_workers_per_gather", "0"),
    ("max_logical_replication_workers", "0"),
    ("autovacuum_max_workers", "1"),
    ("jit", "off"),
];

/// The names of one branch's objects.
pub struct Names {
    pub branch: String,
    /// The network's name and the value of [`LABEL`].
    pub preview: String,
    pub db: String,
    pub api: String,
    pub volume: String,
}

impl Names {
    pub fn new(ws: &Workspace, branch: &str) -> Names {
        let preview = format!("{}-preview-{}", ws.config.stack, names::slug(branch));
        Names {
            branch: branch.to_owned(),
            db: format!("{preview}-db"),
            api: format!("{preview}-api"),
            volume: format!("{preview}-db-data"),
            preview,
        }
    }

    fn labels(&self, ws: &Workspace, created: u64, port: u16) -> Vec<(String, String)> {
        vec![
            (LABEL.to_owned(), self.preview.clone()),
            (STACK_LABEL.to_owned(), ws.config.stack.clone()),
            (BRANCH_LABEL.to_owned(), self.branch.clone()),
            (CREATED_LABEL.to_owned(), created.to_string()),
            (PORT_LABEL.to_owned(), port.to_string()),
        ]
    }
}

/// `git …` in the workspace, its trimmed stdout, or an error with git's own words.
pub(super) fn git(ws: &Workspace, args: &[&str]) -> Result<String> {
    let out = ws
        .sh
        .cmd("git")
        .args(args)
        .quiet()
        .ignore_status()
        .output()
        .context("running git")?;
    if !out.status.success() {
        bail!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The branch checked out in the workspace.
pub fn current_branch(ws: &Workspace) -> Result<String> {
    let branch = git(ws, &["rev-parse", "--abbrev-ref", "HEAD"])
        .context("finding the current git branch; pass --branch NAME")?;
    if branch == "HEAD" {
        bail!("the workspace is on a detached HEAD, not a branch; pass --branch NAME");
    }
    Ok(branch)
}

/// The commit a local branch points at.
pub fn branch_commit(ws: &Workspace, branch: &str) -> Result<String> {
    git(
        ws,
        &[
            "rev-parse",
            "--verify",
            &format!("refs/heads/{branch}^{{commit}}"),
        ],
    )
    .with_context(|| {
        format!("`{branch}` is not a local branch; `git branch --list` shows those that are")
    })
}

/// The scratch `git worktree` of a preview: detached at the branch's commit, in the target
/// directory. It stays between `up`s (checking a commit out in an existing worktree is quicker
/// than making one) and goes with the preview (`down`, `gc`).
struct Tree {
    path: PathBuf,
}

impl Tree {
    fn path(ws: &Workspace, name: &str) -> Result<PathBuf> {
        Ok(ws.scratch("preview-trees")?.join(name))
    }

    fn checkout(ws: &Workspace, name: &str, commit: &str) -> Result<Tree> {
        let tree = Tree {
            path: Tree::path(ws, name)?,
        };
        let at = tree.path.display().to_string();
        // Reused when it is a worktree: `checkout --force` also undoes what a killed `up` left
        // (a re-rendered seed.sql, say); anything else there is replaced.
        if tree.path.join(".git").is_file()
            && git(
                ws,
                &[
                    "-C", &at, "checkout", "--quiet", "--force", "--detach", commit,
                ],
            )
            .is_ok()
            && git(ws, &["-C", &at, "clean", "--quiet", "--force", "-d"]).is_ok()
        {
            return Ok(tree);
        }
        remove_tree(ws, name);
        git(ws, &["worktree", "add", "--detach", "--force", &at, commit])
            .with_context(|| format!("checking {commit} out into {at}"))?;
        Ok(tree)
    }
}

/// Removes a preview's worktree, if there is one.
pub(super) fn remove_tree(ws: &Workspace, name: &str) {
    let Ok(path) = Tree::path(ws, name) else {
        return;
    };
    if path.exists() {
        let at = path.display().to_string();
        let _ = git(ws, &["worktree", "remove", "--force", &at]);
        let _ = std::fs::remove_dir_all(&path);
    }
    let _ = git(ws, &["worktree", "prune"]);
}

/// `preview up --json`. The fields of the `--json` documents here are in alphabetical order,
/// the order their keys have always been printed in.
#[derive(Serialize)]
struct UpJson<'a> {
    branch: &'a str,
    commit: &'a str,
    database_template: &'a str,
    image: &'a str,
    port: u16,
    seconds: f64,
    url: &'a str,
}

/// What `up` prints with --json.
struct Started {
    url: String,
    image: String,
    template: String,
    port: u16,
}

pub fn up(ws: &Workspace, args: &flags::PreviewUp) -> Result<()> {
    let started = Instant::now();
    let branch = match &args.branch {
        Some(branch) => branch.clone(),
        None => current_branch(ws)?,
    };
    let commit = branch_commit(ws, &branch)?;
    let names = Names::new(ws, &branch);
    let docker = Docker::new(ws);
    docker.require_engine()?;
    let _lock = lock::named(ws, &names.preview, "preview up")?;
    let step = progress::step("setup");
    setup::ensure(ws)?;
    step.done();
    owner::sweep_quietly(&docker);
    let step = progress::step(format!("checking out {branch} ({})", &commit[..12]));
    let tree = Tree::checkout(ws, &names.preview, &commit)?;
    step.done();
    let branch_ws = Workspace::open(Some(tree.path.clone()), ws.labels.clone())?;
    // The workspace's target directory, not one in the tree: the caches there (the seed's
    // schema, build contexts, logs) are keyed by content and serve every branch.
    branch_ws.use_target_dir(ws.target_dir()?);
    let preview = converge(ws, &branch_ws, &docker, &names, &commit, args.created_at)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&UpJson {
                branch: &branch,
                commit: &commit,
                database_template: &preview.template,
                image: &preview.image,
                port: preview.port,
                seconds: started.elapsed().as_secs_f64(),
                url: &preview.url,
            })?
        );
    } else {
        println!("{}", preview.url);
    }
    eprintln!(
        "    preview of {branch} ready in {:.1}s; remove it with `cargo xtask preview down {branch}`",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Brings every object of the preview to what the branch's tree says; creates only what is
/// missing or stale.
fn converge(
    ws: &Workspace,
    branch_ws: &Workspace,
    docker: &Docker<'_>,
    names: &Names,
    commit: &str,
    created_at: Option<u64>,
) -> Result<Started> {
    seed::ensure_current(branch_ws)?;
    let built = image::build(branch_ws, docker)?;
    // Held until the database container exists: `gc` prunes unused templates under it, so the
    // template found (or made) here cannot go before a container uses it.
    let templates_lock = lock::named(ws, TEMPLATES_LOCK, "preview up")?;
    let template = template(branch_ws, docker)?;

    let (created, port) = ensure_network(ws, docker, names, created_at)?;
    failpoint::hit("preview-up:after-network");
    let labels = names.labels(ws, created, port);
    let with = |role: &str| {
        let mut labels = labels.clone();
        labels.push((ROLE_LABEL.to_owned(), role.to_owned()));
        labels.push((COMMIT_LABEL.to_owned(), commit.to_owned()));
        labels
    };

    let step = progress::step(format!("database {}", names.db));
    let template_id = docker.image_id(&template)?;
    let mut fresh_db = false;
    match docker.container_image(&names.db)? {
        Some((id, true)) if id == template_id => {}
        Some((id, false)) if id == template_id => docker.start_container(&names.db)?,
        existing => {
            // A database of another template (the branch's migrations or seed changed), or
            // none: a new volume, filled from the template by docker when first mounted.
            if existing.is_some() {
                docker.remove_container(&names.db)?;
            }
            docker.remove_volume(&names.volume)?;
            docker.ensure_volume(&names.volume, &labels)?;
            docker.run_detached(&Run {
                image: &template,
                name: Some(&names.db),
                publish: vec![format!("127.0.0.1:{}:5432", port + names::DB_PORT_OFFSET)],
                env: Vec::new(),
                labels: with("db"),
                network: Some((&names.preview, "db")),
                volumes: vec![format!("{}:/var/lib/postgresql/data", names.volume)],
            })?;
            fresh_db = true;
        }
    }
    drop(templates_lock);
    // Not waited on here: the API starts meanwhile (its /health needs no database), and /ready
    // below says when both are up.
    step.done();
    failpoint::hit("preview-up:after-database");

    let image_id = docker.image_id(&built.image)?;
    let url = format!("http://127.0.0.1:{port}");
    let keep = !fresh_db
        && matches!(docker.container_image(&names.api)?, Some((id, true)) if id == image_id)
        && docker.container_state(&names.api)?.0 == "healthy"
        // A new commit with the same image: the container is made again, so its labels (what
        // `list` shows) name the commit it serves.
        && docker
            .inspect(
                "container",
                &names.api,
                &format!("{{{{index .Config.Labels \"{COMMIT_LABEL}\"}}}}"),
            )?
            .trim()
            == commit;
    if keep {
        progress::note(format!("{} is running on {}", names.api, built.image));
    } else {
        docker.remove_container(&names.api)?;
        let env = vec![
            ("ENVIRONMENT".to_owned(), "local".to_owned()),
            (
                "SUPABASE_JWT_SECRET".to_owned(),
                stack::LOCAL_JWT_SECRET.to_owned(),
            ),
            ("DATABASE_URL".to_owned(), db::network_url()),
        ];
        // Not docker's health check (it runs once a second): /ready below answers as soon as
        // the API and its database are up.
        let mut env = env;
        env.push(("PORT".to_owned(), image::CONTAINER_PORT.to_string()));
        docker
            .run_detached(&Run {
                image: &built.image,
                name: Some(&names.api),
                publish: vec![format!("127.0.0.1:{port}:{}", image::CONTAINER_PORT)],
                env,
                labels: with("api"),
                network: Some((&names.preview, "api")),
                volumes: Vec::new(),
            })
            .with_context(|| {
                format!(
                    "starting {} on 127.0.0.1:{port} (the port recorded for this preview; when \
                     another process holds it, `cargo xtask preview down {}` and `up` again picks another)",
                    names.api, names.branch
                )
            })?;
    }
    let step = progress::step("waiting for /ready, then the read-only smoke checks");
    let address = url.trim_start_matches("http://");
    let mut last = String::from("no answer yet");
    process::wait_until(
        &format!("{url}/ready (the API, its database and migrations)"),
        Duration::from_mins(1),
        || {
            match http::Request::new("GET", address, "/ready")
                .timeout(Duration::from_secs(5))
                .send()
            {
                Ok(ready) if ready.status == 200 => return Ok(true),
                Ok(ready) => last = format!("HTTP {}: {}", ready.status, ready.text()),
                Err(err) => last = format!("{err:#}"),
            }
            // Not answering yet: fail at once, with its logs, when a container has stopped.
            for name in [&names.api, &names.db] {
                let (health, running) = docker.container_state(name)?;
                if !running || health == "unhealthy" {
                    bail!(
                        "{name} stopped or turned unhealthy ({health}); its logs:\n{}",
                        docker.logs(name)?
                    );
                }
            }
            Ok(false)
        },
    )
    .with_context(|| format!("the preview is not ready ({last})"))?;
    smoke::verify_url(branch_ws, &url)?;
    step.done();
    Ok(Started {
        url,
        image: built.image,
        template,
        port,
    })
}

/// The preview's network, created with its creation time and port unless it exists; returns
/// them.
fn ensure_network(
    ws: &Workspace,
    docker: &Docker<'_>,
    names: &Names,
    created_at: Option<u64>,
) -> Result<(u64, u16)> {
    if let Some(labels) = docker.network_labels(&names.preview)? {
        let created = labels.get(CREATED_LABEL).and_then(|v| v.parse().ok());
        let port = labels.get(PORT_LABEL).and_then(|v| v.parse().ok());
        if let (Some(created), Some(port)) = (created, port) {
            return Ok((created, port));
        }
        bail!(
            "network {} exists without the preview labels {CREATED_LABEL} and {PORT_LABEL}: it is \
             not a preview's; remove it (`docker network rm {}`) or rename the stack",
            names.preview,
            names.preview
        );
    }
    // Two `up`s of different branches (of any stack) must not pick one port: the choice and
    // the network that records it are made under one machine-wide lock.
    let _ports = lock::named(ws, "preview-ports", "preview up")?;
    let taken: BTreeSet<u16> = docker
        .list_networks(PORT_LABEL, &format!("{{{{.Label \"{PORT_LABEL}\"}}}}"))?
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    let port = names::ports(&names.branch)
        .find(|p| {
            !taken.contains(p)
                && [*p, p + names::DB_PORT_OFFSET]
                    .iter()
                    .all(|q| std::net::TcpListener::bind(("127.0.0.1", *q)).is_ok())
        })
        .with_context(|| {
            format!(
                "no free port in 127.0.0.1:{}..{} for another preview; `cargo xtask preview gc` removes old ones",
                names::PORT_RANGE.start,
                names::PORT_RANGE.end
            )
        })?;
    let created = created_at.unwrap_or_else(time::now);
    let step = progress::step(format!("network {} (port {port})", names.preview));
    docker.ensure_network(&names.preview, &names.labels(ws, created, port))?;
    step.done();
    Ok((created, port))
}

/// The database template of the branch's tree: the local database image with its migrations
/// and seed applied and small-server settings, committed as an image; built only when no image
/// has the hash of those inputs.
fn template(branch_ws: &Workspace, docker: &Docker<'_>) -> Result<String> {
    let base = db::image(branch_ws, docker)?;
    let files = db::reset::files_to_apply(branch_ws)?;
    let mut hasher = Sha256::new();
    hasher.update(docker.image_id(&base)?.as_bytes());
    for (key, value) in DB_SETTINGS {
        hasher.update(format!("{key}={value}\n").as_bytes());
    }
    for path in files.paths() {
        let name = path.strip_prefix(&branch_ws.root).unwrap_or(path);
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        hasher.update(name.to_string_lossy().as_bytes());
        hasher.update(b"\0");
        hasher.update(Sha256::digest(&bytes));
    }
    let hash = hex(&hasher.finalize())[..16].to_owned();
    let reference = format!("{TEMPLATE_IMAGE}:{hash}");
    if docker.image_exists(&reference)? {
        progress::note(format!(
            "database template {reference} exists (same migrations and seed): shared"
        ));
        return Ok(reference);
    }
    let step = progress::step(format!("database template {reference} (migrations, seed)"));
    // Shared by every preview of equal inputs, so it carries no run's labels (a test's cleanup
    // must not remove it from under another test); the builder container is owned by this
    // process, so a sweep removes it if we are killed.
    let plain = Workspace::open(Some(branch_ws.root.clone()), Vec::new())?;
    let builder_docker = Docker::new(&plain);
    let run = owner::Run::new("preview-template")?;
    let name = format!("openeu-preview-template-{}", run.id);
    let labels: Vec<(String, String)> = run
        .labels()
        .iter()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    builder_docker.run_detached(&Run {
        image: &base,
        name: Some(&name),
        publish: vec!["127.0.0.1::5432".to_owned()],
        env: Vec::new(),
        labels,
        network: None,
        volumes: Vec::new(),
    })?;
    let built = (|| {
        db::wait_healthy(docker, &name)?;
        let address = docker.published_address(&name, "5432")?;
        let port: u16 = address
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .with_context(|| format!("docker published 5432 of {name} as {address}"))?;
        let mut target = Workspace::open(Some(branch_ws.root.clone()), Vec::new())?;
        target.config.db_port = port;
        db::reset::reset_local_files(&target, &files)?;
        for (key, value) in DB_SETTINGS {
            let sql = format!("alter system set {key} = '{value}'");
            let cmd = docker.exec_command(
                &name,
                &[
                    "psql",
                    "-X",
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                    "-c",
                    &sql,
                ],
            );
            let out = process::output_with_timeout(cmd, None, Duration::from_secs(30))?;
            if !out.status.success() {
                bail!("{sql}: {}", String::from_utf8_lossy(&out.stderr).trim());
            }
        }
        // A clean shutdown (the image's STOPSIGNAL is SIGINT): the data directory is
        // consistent when it is committed.
        docker.stop(&name, Duration::from_secs(30))?;
        let mut changes: Vec<String> = [
            owner::RUN_ID_LABEL,
            owner::OWNER_PID_LABEL,
            owner::OWNER_START_LABEL,
        ]
        .iter()
        .map(|key| format!("LABEL {key}=\"\""))
        .collect();
        changes.push(format!("LABEL {TEMPLATE_LABEL}={hash}"));
        docker.commit(&name, &reference, &changes)
    })();
    docker.remove_container(&name)?;
    built.with_context(|| format!("building the database template {reference}"))?;
    step.done();
    Ok(reference)
}
