//! `cargo xtask up` and `down`: the local stack. `up` builds what changed (the base only when
//! its hash has no image), starts the database on a private network and resets it with the
//! migrations and the seed, then starts the API on 127.0.0.1 and waits until it is healthy and
//! ready. `down` removes every container, network and volume labelled for the stack.

use anyhow::{Result, bail};

use xtask_core::{docker::Docker, failpoint, http, lock, progress, workspace::Workspace};
use xtask_data::{db, seed};
use xtask_images::image;
use xtask_setup::setup;

use crate::flags;

/// The local stack's JWT secret: a well-known development value, like the Supabase CLI's.
pub const LOCAL_JWT_SECRET: &str = "openeu-local-development-jwt-secret-not-for-production";

fn labels(ws: &Workspace) -> Vec<(String, String)> {
    vec![ws.config.stack_label()]
}

impl flags::Up {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        let started = std::time::Instant::now();
        let _lock = lock::stack(ws, "up")?;
        let step = progress::step("setup");
        setup::ensure(ws)?;
        step.done();
        // Before any image is built: a migration that does not apply, or a fixture that does
        // not fit the schema, fails here in seconds. A stale seed.sql is rendered again.
        seed::ensure_current(ws)?;
        let docker = Docker::new(ws);
        xtask_core::owner::sweep_quietly(&docker);
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
        let files = db::reset::files_to_apply(ws)?;
        let step = progress::step("resetting the database (migrations, seed)");
        db::reset::reset_local_files(ws, &files)?;
        step.done();
        failpoint::hit("up:after-database");
        docker.remove_container(&app_container)?;
        let port = api_port(ws);
        let env = vec![
            ("ENVIRONMENT".to_owned(), "local".to_owned()),
            (
                "SUPABASE_JWT_SECRET".to_owned(),
                LOCAL_JWT_SECRET.to_owned(),
            ),
            ("DATABASE_URL".to_owned(), db::network_url()),
        ];
        let running = image::run_healthy_on(
            &docker,
            &built.image,
            Some(&app_container),
            Some((&network, "api")),
            env,
            labels(ws),
            port,
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
        // Each sample is asked before it is shown, with what it returned: none comes back empty
        // without saying so.
        for (i, path) in SAMPLES.iter().enumerate() {
            let answer = sample(address, path);
            eprintln!(
                "    {} curl '{}{path}'   # {answer}",
                if i == 0 { "try:" } else { "    " },
                running.url
            );
        }
        eprintln!("    database: {} (cargo xtask db url)", db::local_url(ws));
        eprintln!("    stop: cargo xtask down");
        Ok(())
    }
}

/// The requests `up` suggests: the first questions people ask ("German meetings about energy").
const SAMPLES: [&str; 4] = [
    "/meetings?limit=3",
    "/meetings?country=DE&topic=energy",
    "/legislative-files/2021/0106(COD)",
    "/topics",
];

/// What a sample request returned, in a few words: "3 items", "one item", "HTTP 404".
fn sample(address: &str, path: &str) -> String {
    let response = match http::Request::new("GET", address, path)
        .timeout(std::time::Duration::from_secs(10))
        .send()
    {
        Ok(response) => response,
        Err(err) => return format!("failed: {err:#}"),
    };
    if response.status != 200 {
        return format!("HTTP {}", response.status);
    }
    match serde_json::from_str::<serde_json::Value>(&response.text()) {
        Ok(serde_json::Value::Array(items)) => format!("{} items", items.len()),
        Ok(value) => match value.get("items").and_then(|i| i.as_array()) {
            Some(items) if items.is_empty() => "no items (the seed has none)".to_owned(),
            Some(items) => format!("{} items", items.len()),
            None => "one item".to_owned(),
        },
        Err(_) => "not JSON".to_owned(),
    }
}

/// The configured API port (`api-port`), the same every run, unless something else holds it:
/// then a random one, saying so.
fn api_port(ws: &Workspace) -> Option<u16> {
    let port = ws.config.api_port;
    match std::net::TcpListener::bind(("127.0.0.1", port)) {
        Ok(_) => Some(port),
        Err(err) => {
            progress::note(format!(
                "127.0.0.1:{port} (api-port) is taken ({err}); using a random port this time. \
                 Free it, or set api-port in [workspace.metadata.xtask] of Cargo.toml"
            ));
            None
        }
    }
}

impl flags::Down {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        let docker = Docker::new(ws);
        docker.require_engine()?;
        let _lock = lock::stack(ws, "down")?;
        let step = progress::step("removing the local stack (containers, network, volume)");
        let (key, value) = ws.config.stack_label();
        let label = format!("{key}={value}");
        docker.remove_labelled_containers(&label)?;
        docker.remove_labelled_networks_and_volumes(&label)?;
        step.done();
        Ok(())
    }
}
