//! The OpenEU public API as a library: the router and the state it serves from, so that the
//! binary (src/main.rs) only handles arguments, configuration, the runtime and shutdown, and
//! tests drive the same router in-process.
//!
//! ```no_run
//! # fn demo() -> Result<(), String> {
//! let config = openeu_api::Config::from_lookup(|name| std::env::var(name).ok())
//!     .map_err(|invalid| invalid.to_string())?;
//! let db = openeu_api::Db::connect(config.resolve_database()?)?;
//! let app: axum::Router = openeu_api::router(openeu_api::AppState::new(&config, db));
//! # Ok(()) }
//! ```

mod api;
mod auth;
mod config;
pub mod connection;
mod db;
mod error;
pub mod log;
mod params;
mod preview;
pub mod server;
mod tls;

pub use api::{AppState, OPENAPI, route_paths, router};
pub use config::{Config, Database, Invalid};
pub use db::{Db, Migration};
pub use error::ApiError;

/// The newest migration in supabase/migrations when this binary was built (build.rs reads the
/// directory). `/ready` succeeds once the database has it or a later one.
pub const EXPECTED_MIGRATION: &str = env!("OPENEU_EXPECTED_MIGRATION");

/// The git sha baked in by the image build, or "dev" for a local `cargo run`.
pub const VERSION: &str = match option_env!("OPENEU_GIT_SHA") {
    Some(sha) => sha,
    None => "dev",
};
