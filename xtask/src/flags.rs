//! The command table of `cargo xtask`: every command with its help, in one place. Each
//! command's own flags live beside its code, in the crate that implements it
//! (`impl flags::Seed { pub fn run(self, ws) }` in xtask-data's seed.rs), so this file shows the
//! table and nothing else.

use std::path::PathBuf;

use clap::ArgMatches;
use xtask_bench::flags::BenchCommand;
use xtask_core::cli::Flags;
use xtask_data::flags::{DbCommand, MigrationCommand, Seed};
use xtask_images::flags::{BaseCommand, ImageCommand, Setup, Test};
use xtask_preview::flags::PreviewCommand;
use xtask_ship::flags::{Deploy, Doctor, Down, EnvCommand, Smoke, Up};

/// `cargo xtask`: the flags that every command takes (`Globals`), and the command.
pub struct Xtask {
    pub workspace: Option<PathBuf>,
    pub labels: Vec<String>,
    pub no_wait: bool,
    pub command: Command,
}

xtask_core::args! {
    /// The flags that every command takes, before or after the command's name.
    pub struct Globals {
        /// Operate on another workspace instead of this repository (used by the tests' fixtures).
        #[arg(long, global = true, value_name = "DIR")]
        pub workspace: Option<PathBuf>,
        /// An extra label, KEY=VALUE, put on every image and container this run creates.
        #[arg(long = "label", global = true, value_name = "KEY=VALUE")]
        pub labels: Vec<String>,
        /// When another command holds the local stack (up, down, db …), fail at once instead of
        /// waiting for it.
        #[arg(long, global = true)]
        pub no_wait: bool,
    }
}

impl Xtask {
    /// The whole command line, every command's flags and help included.
    pub fn command() -> clap::Command {
        let cmd = clap::Command::new("cargo xtask")
            .bin_name("cargo xtask")
            .about("Build, test and deploy the OpenEU backend")
            .version(env!("CARGO_PKG_VERSION"));
        Command::args(Globals::args(cmd))
    }

    /// Parses the process's arguments; prints the help or error and exits when asked or wrong.
    pub fn parse() -> Self {
        Self::from_matches(&Self::command().get_matches())
    }

    /// Parses `argv` (its first item is the program's name), exiting as `parse` does.
    pub fn parse_from<I, T>(argv: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Self::from_matches(&Self::command().get_matches_from(argv))
    }

    /// Parses `argv` as `parse_from` does, returning clap's error instead of exiting.
    pub fn try_parse_from<I, T>(argv: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Ok(Self::from_matches(
            &Self::command().try_get_matches_from(argv)?,
        ))
    }

    fn from_matches(matches: &ArgMatches) -> Self {
        let Globals {
            workspace,
            labels,
            no_wait,
        } = Globals::from_matches(matches);
        Self {
            workspace,
            labels,
            no_wait,
            command: Command::from_matches(matches),
        }
    }
}

xtask_core::subcommands! {
    pub enum Command {
        /// Report what is installed and running, what is missing, and how to fix it.
        Doctor(Doctor),
        /// Idempotently install and start what the project needs: Docker engine, registry, images.
        Setup(Setup),
        /// The base image: toolchain and pre-compiled external dependencies.
        Base(BaseCommand),
        /// The app image, built FROM the current base.
        Image(ImageCommand),
        /// The deployment's environment variables, checked against the env spec.
        Env(EnvCommand),
        /// Render supabase/seed.sql from the fixtures in supabase/seed/ (--check: verify it).
        Seed(Seed),
        /// The local Supabase-compatible database.
        Db(DbCommand),
        /// Schema migrations in supabase/migrations/ (Supabase CLI layout).
        Migration(MigrationCommand),
        /// Start the local stack and wait until it is healthy; prints the API's URL.
        Up(Up),
        /// Remove the local stack's containers, network and volume.
        Down(Down),
        /// Ship the tested image to Render, wait until it is live, verify it; and its status, list,
        /// logs and rollback.
        Deploy(Deploy),
        /// Run the declared checks of smoke.toml against a fresh isolated stack (or --url).
        Smoke(Smoke),
        /// Per-branch preview environments: here in Docker, or on Render + Supabase (--remote).
        Preview(PreviewCommand),
        /// Benchmarks that print figures measured side by side.
        Bench(BenchCommand),
        /// Run the whole test suite with real parts (Docker engine, registry, PostgreSQL).
        Test(Test),
    }
}

impl Command {
    /// The command's name as typed, for the README's command table.
    pub fn names() -> Vec<String> {
        Xtask::command()
            .get_subcommands()
            .map(|c| c.get_name().to_owned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_is_consistent() {
        Xtask::command().debug_assert();
    }
}
