//! `cargo xtask up` and `down`: the local stack. For now the app container on the current
//! image; the seeded database joins it in the local-stack issue.

use anyhow::Result;
use clap::Args;

use crate::{docker::Docker, image, paths::Workspace, progress, setup};

/// The label on everything that belongs to the local stack.
const STACK_LABEL: (&str, &str) = ("org.openeu.stack", "local");
const APP_CONTAINER: &str = "openeu-local-api";

#[derive(Args)]
pub struct Up {}

#[derive(Args)]
pub struct Down {}

impl Up {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        let step = progress::step("setup");
        setup::ensure(ws)?;
        step.done();
        let docker = Docker::new(ws);
        let built = image::build(ws, &docker)?;
        remove_stack(&docker)?;
        let running = image::run_healthy(
            &docker,
            &built.image,
            Some(APP_CONTAINER),
            vec![(STACK_LABEL.0.to_owned(), STACK_LABEL.1.to_owned())],
        )?;
        println!("{}", running.url);
        eprintln!("    try: curl {}/health", running.url);
        eprintln!("    stop: cargo xtask down");
        Ok(())
    }
}

impl Down {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        let docker = Docker::new(ws);
        docker.require_engine()?;
        let step = progress::step("removing the local stack");
        remove_stack(&docker)?;
        step.done();
        Ok(())
    }
}

/// Removes the stack's containers; the images stay, they are the cache.
fn remove_stack(docker: &Docker<'_>) -> Result<()> {
    docker.remove_labelled_containers(&format!("{}={}", STACK_LABEL.0, STACK_LABEL.1))
}
