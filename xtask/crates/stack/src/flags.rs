//! The flags of `up`, `down` and `smoke`, with their help. The command table that puts every
//! command together is xtask's flags.rs.

use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Up {}

#[derive(clap::Args)]
pub struct Down {}

#[derive(clap::Args)]
pub struct Smoke {
    /// Test this image instead of building the current one.
    #[arg(long, value_name = "REF", conflicts_with = "url")]
    pub image: Option<String>,
    /// Run the read-only checks against a running deployment instead of a local stack.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Also write the report as JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
}
