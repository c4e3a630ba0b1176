//! The OpenEU public API: the HTTP service that Render runs from the app image.
//!
//! `openeu-api` serves on `0.0.0.0:$PORT`. `openeu-api healthcheck` is what the image's
//! HEALTHCHECK runs: it asks the local server for `/health` over plain TCP, so the runtime image
//! needs no curl.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    process::ExitCode,
    time::Duration,
};

use axum::{Json, Router, routing::get};
use serde_json::{Value, json};

/// Render's default when PORT is unset.
const DEFAULT_PORT: u16 = 10000;

/// The git sha baked in by the image build, or "dev" for a local `cargo run`.
const VERSION: &str = match option_env!("OPENEU_GIT_SHA") {
    Some(sha) => sha,
    None => "dev",
};

fn main() -> ExitCode {
    let port = match port_from_env() {
        Ok(port) => port,
        Err(message) => {
            eprintln!("openeu-api: {message}");
            return ExitCode::from(2);
        }
    };
    match std::env::args().nth(1).as_deref() {
        None | Some("serve") => serve(port),
        Some("healthcheck") => healthcheck(port),
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

fn port_from_env() -> Result<u16, String> {
    match std::env::var("PORT") {
        Err(std::env::VarError::NotPresent) => Ok(DEFAULT_PORT),
        Ok(raw) => raw.trim().parse::<u16>().map_err(|_| {
            format!(
                "PORT must be an integer from 1 to 65535, got {raw:?}; set PORT=8080 for example"
            )
        }),
        Err(std::env::VarError::NotUnicode(_)) => Err("PORT is not valid UTF-8".to_owned()),
    }
}

fn serve(port: u16) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("openeu-api: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run_server(port)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("openeu-api: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run_server(port: u16) -> std::io::Result<()> {
    let app = Router::new()
        .route("/health", get(health))
        .route("/", get(root));
    let addr = SocketAddr::from(([0, 0, 0, 0], port));
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|err| {
        std::io::Error::new(err.kind(), format!("cannot listen on {addr}: {err}"))
    })?;
    eprintln!(r#"{{"level":"info","msg":"listening","addr":"{addr}","version":"{VERSION}"}}"#);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    eprintln!(r#"{{"level":"info","msg":"stopped"}}"#);
    Ok(())
}

/// Resolves on SIGTERM (what Render and `docker stop` send) or Ctrl-C. In-flight requests then
/// finish before `serve` returns.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    eprintln!(r#"{{"level":"info","msg":"shutdown signal received, draining"}}"#);
}

async fn health() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn root() -> Json<Value> {
    Json(json!({ "service": "openeu-api", "version": VERSION }))
}

/// Exits 0 when the local server answers `GET /health` with 200 within the deadline.
fn healthcheck(port: u16) -> ExitCode {
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
