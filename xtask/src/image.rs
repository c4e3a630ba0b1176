//! `cargo xtask image build`: the app image, FROM the current base. The base is made present
//! first (hash-gated), so this never rebuilds dependencies that did not change. `checks` runs
//! the container ecosystem's checkers on the Dockerfiles and the image.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::json;

pub mod checks;

use crate::{
    base,
    docker::{Build, Docker, Run},
    flags, process, progress,
    workspace::{self, Workspace},
};

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
                    println!(
                        "{}",
                        serde_json::to_string_pretty(
                            &json!({ "image": built.image, "base": built.base })
                        )?
                    );
                } else {
                    println!("{}", built.image);
                }
                Ok(())
            }
        }
    }
}

pub struct Built {
    pub image: String,
    pub base: String,
}

/// Ensures the base, then builds the app image on it.
pub fn build(ws: &Workspace, docker: &Docker<'_>) -> Result<Built> {
    let step = progress::step("hashing base inputs");
    let inputs = base::compute(ws)?;
    step.done_with(&format!("tag {}", inputs.tag()));
    base::ensure(ws, docker, &inputs, false, false)?;
    let base_ref = base::reference(ws, &inputs);

    let revision = git_revision(ws);
    let image = format!("{}:{}", ws.config.app_repository(), revision);
    let log = ws.scratch("logs")?.join("image-build.log");
    let step = progress::step(format!("building {image}"));
    docker
        .build(&Build {
            dockerfile: &ws.path(workspace::APP_DOCKERFILE),
            context: &ws.root,
            tags: vec![
                image.clone(),
                format!("{}:latest", ws.config.app_repository()),
            ],
            build_args: vec![
                ("BASE_IMAGE".into(), base_ref.clone()),
                ("GIT_SHA".into(), revision.clone()),
            ],
            labels: vec![
                (base::HASH_LABEL.to_owned(), inputs.hash.clone()),
                ("org.opencontainers.image.revision".to_owned(), revision),
                (
                    "org.opencontainers.image.title".to_owned(),
                    ws.config.app_image.clone(),
                ),
            ],
            no_cache: false,
            shared: false,
            log,
        })
        .context("building the app image")?;
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
    let step = progress::step(format!("starting {image}"));
    let id = docker.run_detached(&Run {
        image,
        name,
        publish: vec![format!("127.0.0.1::{CONTAINER_PORT}")],
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
        Duration::from_secs(60),
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
