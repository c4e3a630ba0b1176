//! `cargo xtask image build`: the app image, FROM the current base. The base is made present
//! first (hash-gated), so this never rebuilds dependencies that did not change. `checks` runs
//! the container ecosystem's checkers on the Dockerfiles and the image.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Serialize;

pub mod checks;
mod context;

use xtask_core::{
    docker::{Build, Docker, ImageOwner, Run},
    process, progress,
    workspace::{self, Workspace},
};

use crate::{base, flags};

/// The port the service listens on inside the container.
pub const CONTAINER_PORT: u16 = 8080;

impl flags::ImageCommand {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        match self {
            flags::ImageCommand::Build(args) => {
                let docker = Docker::new(ws);
                docker.require_engine()?;
                let built = build(ws, &docker)?;
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&built)?);
                } else {
                    println!("{}", built.image);
                }
                Ok(())
            }
        }
    }
}

/// Also `image build --json`: `base` then `image`, the order the keys have always been printed
/// in.
#[derive(Serialize)]
pub struct Built {
    pub base: String,
    pub image: String,
}

/// The label that carries the hash of the app image's build context.
pub const INPUTS_LABEL: &str = "org.openeu.app-inputs";

/// Ensures the base, then builds the app image on it, only when no image was built from the
/// same context on the same base: a change to the seed, the README or xtask reuses the image.
pub fn build(ws: &Workspace, docker: &Docker<'_>) -> Result<Built> {
    let step = progress::step("hashing base inputs");
    let inputs = base::compute(ws)?;
    step.done_with(&format!("tag {}", inputs.tag()));
    base::ensure(ws, docker, &inputs, false, false)?;
    let base_ref = base::reference(ws, &inputs);

    let step = progress::step("collecting the app's build context");
    let context = context::collect(ws, &inputs)?;
    let hash = context.hash(&base_ref);
    step.done_with(&format!("{} files, hash {hash}", context.files.len()));

    let revision = git_revision(ws);
    let repository = ws.config.app_repository();
    let image = format!("{repository}:{revision}");
    // The image's identity is its inputs; the revision and `latest` tags follow it.
    let identity = format!("{repository}:inputs-{hash}");
    let tags = [image.clone(), format!("{repository}:latest")];
    if docker.image_exists(&identity)? {
        let step = progress::step(format!("tagging {image}"));
        for tag in &tags {
            docker.tag(&identity, tag)?;
        }
        step.done_with(&format!(
            "no build: {identity} has the same build context (what changed is data, docs or xtask)"
        ));
        return Ok(Built {
            image,
            base: base_ref,
        });
    }
    // One directory per run: concurrent builds (tests, worktrees sharing a target directory)
    // must not write into each other's context.
    let dir = ws
        .scratch("app-context")?
        .join(format!("{hash}-{}", std::process::id()));
    context.write(&dir)?;
    let log = ws.scratch("logs")?.join("image-build.log");
    let step = progress::step(format!("building {image}"));
    docker
        .build(&Build {
            dockerfile: &dir.join(workspace::APP_DOCKERFILE),
            context: &dir,
            tags: tags.iter().cloned().chain([identity]).collect(),
            build_args: vec![
                ("BASE_IMAGE".into(), base_ref.clone()),
                ("GIT_SHA".into(), revision.clone()),
            ],
            labels: vec![
                (base::HASH_LABEL.to_owned(), inputs.hash.clone()),
                (INPUTS_LABEL.to_owned(), hash),
                ("org.opencontainers.image.revision".to_owned(), revision),
                (
                    "org.opencontainers.image.title".to_owned(),
                    ws.config.app_image.clone(),
                ),
            ],
            no_cache: false,
            owner: ImageOwner::Run,
            log,
        })
        .context("building the app image")?;
    let _ = std::fs::remove_dir_all(&dir);
    step.done();
    Ok(Built {
        image,
        base: base_ref,
    })
}

/// The commit the image is built from, with `-dirty` when the tree has uncommitted changes.
fn git_revision(ws: &Workspace) -> String {
    let sh = &ws.sh;
    let Ok(sha) = xshell::cmd!(sh, "git rev-parse --short=12 HEAD")
        .quiet()
        .ignore_stderr()
        .read()
    else {
        return "nogit".to_owned();
    };
    let dirty = xshell::cmd!(sh, "git status --porcelain --untracked-files=no")
        .quiet()
        .ignore_stderr()
        .read()
        .is_ok_and(|s| !s.trim().is_empty());
    if dirty { format!("{sha}-dirty") } else { sha }
}

/// A running, healthy app container.
pub struct Running {
    pub url: String,
}

/// Starts `image` published on a random 127.0.0.1 port and waits for docker to call it healthy.
/// Fails fast, with the container's logs, when it dies or turns unhealthy.
pub fn run_healthy(
    docker: &Docker<'_>,
    image: &str,
    name: Option<&str>,
    network: Option<(&str, &str)>,
    env: Vec<(String, String)>,
    labels: Vec<(String, String)>,
) -> Result<Running> {
    run_healthy_on(docker, image, name, network, env, labels, None)
}

/// As [`run_healthy`], published on `host_port` of 127.0.0.1 when given (a random one if not).
pub fn run_healthy_on(
    docker: &Docker<'_>,
    image: &str,
    name: Option<&str>,
    network: Option<(&str, &str)>,
    env: Vec<(String, String)>,
    labels: Vec<(String, String)>,
    host_port: Option<u16>,
) -> Result<Running> {
    let step = progress::step(format!("starting {image}"));
    let host_port = host_port.map(|p| p.to_string()).unwrap_or_default();
    let id = docker.run_detached(&Run {
        image,
        name,
        publish: vec![format!("127.0.0.1:{host_port}:{CONTAINER_PORT}")],
        env: [("PORT".to_owned(), CONTAINER_PORT.to_string())]
            .into_iter()
            .chain(env)
            .collect(),
        labels,
        network,
        volumes: Vec::new(),
    })?;
    // The caller owns cleanup (by label), also when this wait fails.
    process::wait_until(
        "the app container to become healthy",
        Duration::from_mins(1),
        || {
            let (health, running) = docker.container_state(&id)?;
            if !running || health == "unhealthy" {
                bail!(
                    "the app container stopped or turned unhealthy ({health}); its logs:\n{}",
                    docker.logs(&id)?
                );
            }
            Ok(health == "healthy")
        },
    )?;
    let address = docker.published_address(&id, &CONTAINER_PORT.to_string())?;
    step.done();
    Ok(Running {
        url: format!("http://{address}"),
    })
}
