//! The OpenEU public API: the HTTP service that Render runs from the app image.
//!
//! `openeu-api` validates its environment against the env spec, finds its database (a preview
//! asks the Supabase Management API for its branch's) and serves on `0.0.0.0:$PORT`.
//! `openeu-api healthcheck` is what the image's HEALTHCHECK runs: it asks the local server for
//! `/health` over plain TCP, so the runtime image needs no curl.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    process::ExitCode,
    sync::Arc,
    time::Duration,
};

use openeu_api::{AppState, Config, Db, VERSION, log, server};
use serde_json::json;

/// Render's default when PORT is unset.
const DEFAULT_PORT: u16 = 10000;
/// After SIGTERM, in-flight requests get this long to finish.
const DRAIN_DEADLINE: Duration = Duration::from_secs(20);

const USAGE: &str = "\
The OpenEU public API.

Usage:
  openeu-api [serve]     validate the environment, find the database and serve on 0.0.0.0:$PORT
  openeu-api healthcheck exit 0 when the local server answers GET /health (the image's HEALTHCHECK)
  openeu-api --version   print the version (the git sha of the image build)
  openeu-api --help      print this help

The environment (DATABASE_URL, SUPABASE_JWT_SECRET, PORT, ...) is declared in crates/openeu-env;
`cargo xtask env check` validates it and .env.example lists every variable.
";

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => serve(),
        Some("healthcheck") => healthcheck(),
        Some("--version") => {
            println!("openeu-api {VERSION}");
            ExitCode::SUCCESS
        }
        Some("--help" | "-h" | "help") => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!(
                "openeu-api: unknown command `{other}`; expected `serve` or `healthcheck` (see --help)"
            );
            ExitCode::from(2)
        }
    }
}

fn serve() -> ExitCode {
    // A panic is one JSON log line like every other (the handler's guard answers it with a 500).
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        log::error(
            "panic",
            json!({
                "panic": message,
                "location": info.location().map(ToString::to_string),
            }),
        );
    }));
    let config = match Config::from_lookup(|name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(invalid) => {
            log::error("invalid environment", json!({ "problems": invalid.0 }));
            eprintln!("openeu-api: {invalid}");
            return ExitCode::from(2);
        }
    };
    log::set_level(config.log_level);
    let connection = match config.resolve_database() {
        Ok(connection) => connection,
        Err(message) => {
            log::error("no database", json!({ "error": message }));
            return ExitCode::from(2);
        }
    };
    log::info(
        "database connection",
        json!({
            "sslmode": connection.ssl.name(),
            "pool_mode": connection.pool.name(),
            "pool_mode_guessed": connection.pool_guessed,
        }),
    );
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
    match runtime.block_on(run_server(config, connection)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            log::error("server failed", json!({ "error": err }));
            ExitCode::FAILURE
        }
    }
}

async fn run_server(
    config: Config,
    connection: openeu_api::connection::Connection,
) -> Result<(), String> {
    let db = Db::connect(connection)?;
    let app = openeu_api::router(AppState::new(&config, db));
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
    let server = server::serve(listener, app, server::Limits::DEFAULT, async move {
        shutdown_signal().await;
        signalled.notify_one();
    });
    let deadline = async {
        draining.notified().await;
        tokio::time::sleep(DRAIN_DEADLINE).await;
    };
    tokio::select! {
        () = server => {},
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
