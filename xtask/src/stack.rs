//! `cargo xtask up` and `down`: the local stack. `up` builds what changed (the base only when
//! its hash has no image), starts the database on a private network and resets it with the
//! migrations and the seed, then starts the API on 127.0.0.1 and waits until it is healthy and
//! ready. `down` removes every container, network and volume labelled for the stack.

use anyhow::{Result, bail};

use crate::{db, docker::Docker, flags, http, image, progress, setup, workspace::Workspace};

/// The local stack's JWT secret: a well-known development value, like the Supabase CLI's.
const LOCAL_JWT_SECRET: &str = "openeu-local-development-jwt-secret-not-for-production";

fn labels(ws: &Workspace) -> Vec<(String, String)> {
    vec![ws.config.stack_label()]
}

impl flags::Up {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        let started = std::time::Instant::now();
        let step = progress::step("setup");
        setup::ensure(ws)?;
        step.done();
        let docker = Docker::new(ws);
        crate::owner::sweep_quietly(&docker);
        let built = image::build(ws, &docker)?;
        let network = ws.config.stack_name("");
        let app_container = ws.config.stack_name("api");
        let step = progress::step(format!("network {network}"));
        docker.ensure_network(&network, &labels(ws))?;
        step.done();
        // The database joins the network when its container is (re)created.
        let db_container = db::container(ws);
        if docker.container_image(&db_container)?.is_some()
            && !docker.container_networks(&db_container)?.contains(&network)
        {
            docker.remove_container(&db_container)?;
        }
        db::start(ws, &docker, Some(&network))?;
        let files = db::files_to_apply(ws)?;
        let step = progress::step("resetting the database (migrations, seed)");
        db::reset_local_files(ws, &files)?;
        step.done();
        docker.remove_container(&app_container)?;
        let env = vec![
            ("ENVIRONMENT".to_owned(), "local".to_owned()),
            (
                "SUPABASE_JWT_SECRET".to_owned(),
                LOCAL_JWT_SECRET.to_owned(),
            ),
            ("DATABASE_URL".to_owned(), db::network_url()),
        ];
        let running = image::run_healthy(
            &docker,
            &built.image,
            Some(&app_container),
            Some((&network, "api")),
            env,
            labels(ws),
        )?;
        let step = progress::step("checking /ready");
        let address = running.url.trim_start_matches("http://");
        let ready = http::Request::new("GET", address, "/ready")
            .timeout(std::time::Duration::from_secs(10))
            .send()?;
        if ready.status != 200 {
            bail!(
                "the API is up but not ready (HTTP {}):\n{}",
                ready.status,
                ready.text()
            );
        }
        step.done();
        println!("{}", running.url);
        eprintln!(
            "    the API serves {} seeded meetings; {:.1}s in all",
            db::meeting_count(ws)?,
            started.elapsed().as_secs_f64()
        );
        eprintln!("    try: curl {}/meetings?limit=3", running.url);
        eprintln!(
            "         curl '{}/meetings?country=DE&q=energy'",
            running.url
        );
        eprintln!(
            "         curl {}/legislative-files/2021/0106(COD)",
            running.url
        );
        eprintln!("    database: {} (cargo xtask db url)", db::local_url(ws));
        eprintln!("    stop: cargo xtask down");
        Ok(())
    }
}

impl flags::Down {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        let docker = Docker::new(ws);
        docker.require_engine()?;
        let step = progress::step("removing the local stack (containers, network, volume)");
        let (key, value) = ws.config.stack_label();
        let label = format!("{key}={value}");
        docker.remove_labelled_containers(&label)?;
        docker.remove_labelled_networks_and_volumes(&label)?;
        step.done();
        Ok(())
    }
}
