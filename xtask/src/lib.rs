//! `cargo xtask`: the one entry point for building, testing, seeding and deploying the OpenEU
//! backend. A library with a thin binary (main.rs), so the integration tests run the real
//! command line in-process.
//!
//! This package holds the command table (`flags`), the dispatch (`run`) and the two commands
//! that use every room: `doctor` and `test`. The other commands live in the rooms under
//! `xtask/crates/`, each named for what it holds (ARCHITECTURE.md has the map): xtask-setup,
//! xtask-images (`base`, `image`), xtask-data (`seed`, `db`, `migration`), xtask-stack (`up`,
//! `down`, `smoke`), xtask-deploy (`deploy`, `env`) and xtask-preview, all on xtask-core's
//! shared infrastructure and clients.

pub mod doctor;
pub mod flags;
pub mod test;

#[cfg(test)]
mod tidy;

use anyhow::Result;
use xtask_core::{docker, workspace::Workspace};

use crate::flags::{Command, Xtask};

/// Runs one parsed command line.
pub fn run(cli: Xtask) -> Result<()> {
    let mut ws = Workspace::open(cli.workspace, cli.labels)?;
    ws.no_wait = cli.no_wait;
    // A push killed before it could delete its registry login leaves it behind: every
    // command sweeps those of dead owners (a readdir when there are none).
    docker::credentials::sweep();
    match cli.command {
        Command::Doctor(cmd) => cmd.run(&ws),
        Command::Setup(cmd) => cmd.run(&ws),
        Command::Base(cmd) => cmd.run(&ws),
        Command::Image(cmd) => cmd.run(&ws),
        Command::Env(cmd) => cmd.run(&ws),
        Command::Seed(cmd) => cmd.run(&ws),
        Command::Db(cmd) => cmd.run(&ws),
        Command::Migration(cmd) => cmd.run(&ws),
        Command::Up(cmd) => cmd.run(&ws),
        Command::Down(cmd) => cmd.run(&ws),
        Command::Deploy(cmd) => cmd.run(&ws),
        Command::Smoke(cmd) => cmd.run(&ws),
        Command::Preview(cmd) => cmd.run(&ws),
        Command::Test(cmd) => cmd.run(&ws),
    }
}
