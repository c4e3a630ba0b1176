//! `cargo xtask`: the one entry point for building, testing, seeding and deploying the OpenEU
//! backend. This file only parses flags and dispatches; each task lives in its own module.

mod base;
mod bench;
mod bench_api;
mod bench_seed;
mod config;
mod db;
mod docker;
mod doctor;
mod edits;
mod env;
mod hash;
mod image;
mod paths;
mod process;
mod progress;
mod registry;
mod schema;
mod seed;
mod setup;
mod stack;
mod standin;
mod test_cmd;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Build, test and deploy the OpenEU backend",
    version
)]
struct Cli {
    /// Operate on another workspace instead of this repository (used by the tests' fixtures).
    #[arg(long, global = true, value_name = "DIR")]
    workspace: Option<PathBuf>,
    /// An extra label, KEY=VALUE, put on every image and container this run creates.
    #[arg(long = "label", global = true, value_name = "KEY=VALUE")]
    labels: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Report what is installed and running, what is missing, and how to fix it.
    Doctor(doctor::Doctor),
    /// Idempotently install and start what the project needs: Docker engine, registry, images.
    Setup(setup::Setup),
    /// The base image: toolchain and pre-compiled external dependencies.
    #[command(subcommand)]
    Base(base::BaseCommand),
    /// The deployment's environment variables, checked against the env spec.
    #[command(subcommand)]
    Env(env::EnvCommand),
    /// The app image, built FROM the current base.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Run the whole test suite with real parts (Docker engine, registry).
    Test(test_cmd::Test),
    /// The local Supabase-compatible database.
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Render supabase/seed.sql from the fixtures in supabase/seed/ (--check: verify it).
    Seed(seed::Seed),
    /// Start the local stack and wait until it is healthy; prints the API's URL.
    Up(stack::Up),
    /// Remove the local stack's containers.
    Down(stack::Down),
    /// Benchmarks that print figures measured side by side.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let ws = paths::Workspace::open(cli.workspace, cli.labels)?;
    match cli.command {
        Command::Doctor(cmd) => cmd.run(&ws),
        Command::Setup(cmd) => cmd.run(&ws),
        Command::Base(cmd) => cmd.run(&ws),
        Command::Env(cmd) => cmd.run(&ws),
        Command::Image(cmd) => cmd.run(&ws),
        Command::Test(cmd) => cmd.run(&ws),
        Command::Db(cmd) => cmd.run(&ws),
        Command::Seed(cmd) => cmd.run(&ws),
        Command::Up(cmd) => cmd.run(&ws),
        Command::Down(cmd) => cmd.run(&ws),
        Command::Bench(cmd) => cmd.run(&ws),
    }
}
