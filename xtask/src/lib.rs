//! `cargo xtask`: the one entry point for building, testing, seeding and deploying the OpenEU
//! backend. A library with a thin binary, so the integration tests call the real code.
//!
//! The commands live in crates under `xtask/crates/`, layered so that rustc compiles siblings
//! side by side: `xtask-core` (the named infrastructure: `workspace`, `process`, `progress`,
//! `files`, `http`, `https`, `pgtls`, `lock`, `failpoint`, `owner`, `signals`, `time`,
//! `encoding`, `net`, `docker`), then `xtask-images` (`setup`, `base`, `image`, `test`) beside
//! `xtask-data` (`seed`, `db`, `migration`), then `xtask-ship` (`stack`, `smoke`, `env`,
//! `deploy`, `doctor`) beside `xtask-bench`, then `xtask-preview`. Each command has its module
//! there (and a folder beside it when it has parts) with its flags. This crate holds `flags`
//! (the command table), the dispatch, and re-exports every module under its old name
//! (`xtask::deploy`), so the tests and the binary see one library.

pub mod flags;

// Infrastructure.
pub use xtask_core::{
    docker, encoding, failpoint, files, http, https, lock, net, owner, pgtls, process, progress,
    sha256, signals, time, workspace,
};

// Commands.
pub use xtask_bench::bench;
pub use xtask_data::{db, migration, seed};
pub use xtask_images::{base, image, setup, test};
pub use xtask_preview::preview;
pub use xtask_ship::{deploy, doctor, env, smoke, stack};

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
