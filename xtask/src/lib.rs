//! `cargo xtask`: the one entry point for building, testing, seeding and deploying the OpenEU
//! backend. A library with a thin binary, so the integration tests call the real code.
//!
//! The top level mirrors the command table: each command has its module (and a folder beside
//! it when it has parts). The rest is named infrastructure: `flags` (the CLI surface),
//! `workspace` (paths and configuration, found at run time), `process`, `progress`, `files`,
//! `http`, `https`, `pgtls` (the TLS policy for remote databases), `lock` (one command at a
//! time per stack), `failpoint` (deterministic kills for tests), `owner` (runs, their labels
//! and the sweep of dead ones), and `docker` (the only module that spells docker's command
//! line).

pub mod flags;

// Infrastructure.
pub mod docker;
pub mod failpoint;
pub mod files;
pub mod http;
pub mod https;
pub mod lock;
pub mod owner;
pub mod pgtls;
pub mod process;
pub mod sha256;
pub mod progress;
pub mod workspace;

// Commands.
pub mod base;
pub mod bench;
pub mod db;
pub mod deploy;
pub mod doctor;
pub mod env;
pub mod image;
pub mod migration;
pub mod preview;
pub mod seed;
pub mod setup;
pub mod smoke;
pub mod stack;
pub mod test;

#[cfg(test)]
mod tidy;

use anyhow::Result;

use crate::{
    flags::{Command, Xtask},
    workspace::Workspace,
};

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
        Command::Bench(cmd) => cmd.run(&ws),
        Command::Test(cmd) => cmd.run(&ws),
    }
}
