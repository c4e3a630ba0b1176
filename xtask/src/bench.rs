//! `cargo xtask bench …`: benchmarks that print figures measured side by side in one run.

use anyhow::Result;
use clap::Subcommand;

use crate::paths::Workspace;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// The base image: cache hits vs docker builds, false rebuilds, hashing at scale.
    Base,
}

impl BenchCommand {
    pub fn run(self, _ws: &Workspace) -> Result<()> {
        anyhow::bail!("not implemented yet")
    }
}
