//! The OpenEU public API: the HTTP service that Render runs from the app image.
//!
//! `openeu-api` validates its environment against the env spec, finds its database (a preview
//! asks the Supabase Management API for its branch's) and serves on `0.0.0.0:$PORT`.
//! `openeu-api healthcheck` is what the image's HEALTHCHECK runs: it asks the local server for
//! `/health` over plain TCP, so the runtime image needs no curl.

mod api;
mod auth;
mod config;
mod db;
mod log;
mod params;
mod preview;

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    process::ExitCode,
    sync::Arc,
    time::Duration,
};

use serde_json::json;

use crate::config::{Config, Database};

/// Render's default when PORT is unset.
const DEFAULT_PORT: u16 = 10000;
/// After SIGTERM, in-flight requests get this long to finish.
const DRAIN_DEADLINE: Duration = Duration::from_secs(20);

/// The git sha baked in by the image build, or "dev" for a local `cargo run`.
const VERSION: &str = match option_env!("OPENEU_GIT_SHA") {
    Some(sha) => sha,
    None => "dev",
};

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => serve(),
        Some("healthcheck") => healthcheck(),
        Some("--version") => {
            println!("openeu-api {VERSION}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("openeu-api: unknown command `{other}`; expected `serve` or `healthcheck`");
            ExitCode::from(2)
        }
    }
}

fn serve() -> ExitCode {
    let config = match Config::from_lookup(|name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(invalid) => {
            log::error("invalid environment", json!({ "problems": invalid.0 }));
            eprintln!("openeu-api: {invalid}");
            return ExitCode::from(2);
        }
    };
    log::set_level(config.log_level);
    let pg_config = match database_config(&config) {
        Ok(pg) => pg,
        Err(message) => {
            log::error("no database", json!({ "error": message }));
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            log::error(
                "cannot start the async runtime",
                json!({ "error": err.to_string() }),
            );
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_server(config, pg_config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            log::error("server failed", json!({ "error": err }));
            ExitCode::FAILURE
        }
    }
}

/// The database to connect to: DATABASE_URL, or the preview branch's (resolved now, once).
fn database_config(config: &Config) -> Result<tokio_postgres::Config, String> {
    match &config.database {
        Database::Url(url) => url
            .parse()
            .map_err(|_| "DATABASE_URL is not a connection string the driver accepts".to_owned()),
        Database::PreviewBranch {
            api_url,
            project_id,
            access_token,
            git_branch,
        } => {
            let resolved = preview::resolve(
                api_url,
                project_id,
                access_token,
                git_branch,
                config.preview_deadline,
            )?;
            log::info(
                "preview database resolved",
                json!({ "branch": resolved.branch, "host": resolved.host }),
            );
            let mut pg = tokio_postgres::Config::new();
            pg.host(&resolved.host)
                .port(resolved.port)
                .user(&resolved.user)
                .password(&resolved.password)
                .dbname("postgres");
            Ok(pg)
        }
    }
}

async fn run_server(config: Config, pg_config: tokio_postgres::Config) -> Result<(), String> {
    let db = db::Db::connect(pg_config)?;
    let state = Arc::new(api::AppState {
        db,
        jwt_secret: config.jwt_secret.clone(),
        environment: config.target.name(),
        git_branch: config.git_branch.clone(),
        is_pull_request: config.is_pull_request,
        version: VERSION,
    });
    let addr = SocketAddr::from(([0, 0, 0, 0], config.port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    log::info(
        "listening",
        json!({ "addr": addr.to_string(), "version": VERSION, "environment": config.target.name() }),
    );
    let draining = Arc::new(tokio::sync::Notify::new());
    let signalled = Arc::clone(&draining);
    let server = axum::serve(listener, api::router(state)).with_graceful_shutdown(async move {
        shutdown_signal().await;
        signalled.notify_one();
    });
    let deadline = async {
        draining.notified().await;
        tokio::time::sleep(DRAIN_DEADLINE).await;
    };
    tokio::select! {
        result = server => result.map_err(|e| e.to_string())?,
        () = deadline => log::warn("drain deadline passed; exiting with requests in flight", json!({ "deadline_s": DRAIN_DEADLINE.as_secs() })),
    }
    log::info("stopped", json!({}));
    Ok(())
}

/// Resolves on SIGTERM (what Render and `docker stop` send) or Ctrl-C. The listener then stops
/// accepting and in-flight requests finish.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    log::info("shutdown signal received, draining", json!({}));
}

/// Exits 0 when the local server answers `GET /health` with 200 within the deadline.
fn healthcheck() -> ExitCode {
    let port = match std::env::var("PORT") {
        Err(_) => DEFAULT_PORT,
        Ok(raw) => match raw.trim().parse::<u16>() {
            Ok(port) => port,
            Err(_) => {
                eprintln!("openeu-api healthcheck: PORT must be an integer from 1 to 65535");
                return ExitCode::from(2);
            }
        },
    };
    match probe_health(port) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("openeu-api healthcheck: {err}");
            ExitCode::FAILURE
        }
    }
}

fn probe_health(port: u16) -> std::io::Result<()> {
    let deadline = Duration::from_secs(3);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, deadline)?;
    stream.set_read_timeout(Some(deadline))?;
    stream.set_write_timeout(Some(deadline))?;
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let status_line = response.split(|&b| b == b'\n').next().unwrap_or_default();
    let status_line = String::from_utf8_lossy(status_line);
    if status_line.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "unexpected answer: {}",
            status_line.trim()
        )))
    }
}
