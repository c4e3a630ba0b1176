//! `cargo xtask up` and `down`: the local stack. For now the app container on the current
//! image; the seeded database joins it in the local-stack issue.

use anyhow::Result;
use clap::Args;

use crate::{docker::Docker, image, paths::Workspace, progress, setup};

/// The label on everything that belongs to the local stack.
const STACK_LABEL: (&str, &str) = ("org.openeu.stack", "local");
const APP_CONTAINER: &str = "openeu-local-api";
/// The local stack's JWT secret: a well-known development value, like the Supabase CLI's.
const LOCAL_JWT_SECRET: &str = "openeu-local-development-jwt-secret-not-for-production";
/// Where the local stack's database will be until the seeded database joins the stack.
const PLACEHOLDER_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:54322/postgres";

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
        let database_url = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty());
        if database_url.is_none() {
            progress::note(
                "DATABASE_URL is not set: the API serves /health, and /ready answers 503 until it has a database",
            );
        }
        let env = vec![
            ("ENVIRONMENT".to_owned(), "local".to_owned()),
            (
                "SUPABASE_JWT_SECRET".to_owned(),
                LOCAL_JWT_SECRET.to_owned(),
            ),
            (
                "DATABASE_URL".to_owned(),
                database_url.unwrap_or_else(|| PLACEHOLDER_DATABASE_URL.to_owned()),
            ),
        ];
        let running = image::run_healthy(
            &docker,
            &built.image,
            Some(APP_CONTAINER),
            env,
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
