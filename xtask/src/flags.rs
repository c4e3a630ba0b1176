//! The command table of `cargo xtask`: every command with its help, in one place. Each
//! command's own flags live beside its code, in the crate that implements it
//! (`impl flags::Seed { pub fn run(self, ws) }` in xtask-data's seed.rs), so this file shows the
//! table and nothing else.

use std::path::PathBuf;

use xtask_data::flags::{DbCommand, MigrationCommand, Seed};
use xtask_deploy::flags::{Deploy, EnvCommand};
use xtask_images::flags::{BaseCommand, ImageCommand};
use xtask_preview::flags::PreviewCommand;
use xtask_setup::flags::Setup;
use xtask_stack::flags::{Down, Smoke, Up};

/// Build, test and deploy the OpenEU backend.
// The doc comment above is `cargo xtask --help`'s first line. The fields are the flags that every
// command takes, before or after the command's name (`global`); `command` is the command.
#[derive(clap::Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", version)]
pub struct Xtask {
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
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Subcommand)]
pub enum Command {
    /// Report what is installed and running, what is missing, and how to fix it.
    Doctor(Doctor),
    /// Idempotently install and start what the project needs: Docker engine, registry, images.
    Setup(Setup),
    /// The base image: toolchain and pre-compiled external dependencies.
    #[command(subcommand)]
    Base(BaseCommand),
    /// The app image, built FROM the current base.
    #[command(subcommand)]
    Image(ImageCommand),
    /// The deployment's environment variables, checked against the env spec.
    #[command(subcommand)]
    Env(EnvCommand),
    /// Render supabase/seed.sql from the fixtures in supabase/seed/ (--check: verify it).
    Seed(Seed),
    /// The local Supabase-compatible database.
    #[command(subcommand)]
    Db(DbCommand),
    /// Schema migrations in supabase/migrations/ (Supabase CLI layout).
    #[command(subcommand)]
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
    #[command(subcommand)]
    Preview(PreviewCommand),
    /// Run the whole test suite with real parts (Docker engine, registry, PostgreSQL).
    Test(Test),
}

#[derive(clap::Args)]
pub struct Doctor {
    /// Check the production side instead: the Render API key and service, the registry's
    /// credentials, and the production database (TLS, migration history).
    #[arg(long)]
    pub remote: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct Test {
    /// Arguments passed on to `cargo test` (after `--`), e.g. a test name filter.
    #[arg(last = true)]
    pub cargo_args: Vec<String>,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    use clap::CommandFactory;

    #[test]
    fn the_cli_is_consistent() {
        Xtask::command().debug_assert();
    }

    fn parse(args: &[&str]) -> Xtask {
        let argv = std::iter::once("cargo xtask").chain(args.iter().copied());
        Xtask::try_parse_from(argv).unwrap_or_else(|err| panic!("{args:?}: {err}"))
    }

    // The values clap's derive gave for command lines the integration tests use, pinned while
    // the flags went through clap's builder for a while and kept now that they are derived again
    // (help and errors are pinned by `golden`).
    #[test]
    fn command_lines_parse_as_with_derive() {
        use std::time::Duration;

        use xtask_deploy::flags::{DeployCommand, EnvReader, EnvTarget};
        use xtask_images::flags::BaseImage;

        let cli = parse(&[
            "--label",
            "a=1",
            "deploy",
            "--target",
            "staging",
            "--dry-run",
        ]);
        assert_eq!(cli.labels, ["a=1"]);
        assert!(cli.workspace.is_none() && !cli.no_wait);
        let Command::Deploy(deploy) = cli.command else {
            panic!("deploy")
        };
        assert!(deploy.command.is_none() && deploy.args.dry_run && !deploy.args.json);
        assert_eq!(deploy.target, "staging");
        assert_eq!(deploy.args.timeout, Duration::from_secs(15 * 60));
        assert_eq!(deploy.args.verify_timeout, Duration::from_secs(60));

        // A global flag after the subcommand still reaches `deploy`'s flags.
        let cli = parse(&[
            "deploy",
            "logs",
            "--tail",
            "5",
            "--target",
            "preview",
            "--no-wait",
        ]);
        assert!(cli.no_wait);
        let Command::Deploy(deploy) = cli.command else {
            panic!("deploy")
        };
        assert_eq!(deploy.target, "preview");
        let Some(DeployCommand::Logs(logs)) = deploy.command else {
            panic!("logs")
        };
        assert_eq!((logs.tail, logs.deploy), (5, None));
        let Command::Deploy(deploy) = parse(&["deploy", "list", "--json"]).command else {
            panic!("deploy")
        };
        assert_eq!(deploy.target, "production");
        let Some(DeployCommand::List(list)) = deploy.command else {
            panic!("list")
        };
        assert!(list.json && list.limit == 10);

        let cli = parse(&[
            "env", "check", "--reader", "build", "--reader", "deploy", "--target", "local",
        ]);
        let Command::Env(xtask_deploy::flags::EnvCommand::Check(check)) = cli.command else {
            panic!("env check")
        };
        assert_eq!(check.readers, [EnvReader::Build, EnvReader::Deploy]);
        assert_eq!(check.target, Some(EnvTarget::Local));
        assert!(check.env_file.is_none() && !check.service && !check.json);

        let tag = "0123456789abcdef0123456789abcdef";
        let Command::Base(BaseCommand::Diff(diff)) = parse(&["base", "diff", tag]).command else {
            panic!("base diff")
        };
        assert_eq!(diff.image, BaseImage::Tag(tag.to_owned()));

        let cli = parse(&["preview", "gc", "--older-than", "1d", "--dry-run"]);
        let Command::Preview(PreviewCommand::Gc(gc)) = cli.command else {
            panic!("gc")
        };
        assert_eq!(gc.older_than, Some(Duration::from_secs(24 * 3600)));
        assert!(gc.dry_run && !gc.gone && !gc.json);
        let cli = parse(&[
            "preview",
            "up",
            "--branch",
            "feature/a",
            "--created-at",
            "7",
        ]);
        let Command::Preview(PreviewCommand::Up(up)) = cli.command else {
            panic!("up")
        };
        assert_eq!(
            (up.branch.as_deref(), up.created_at),
            (Some("feature/a"), Some(7))
        );
        assert_eq!(up.timeout, Duration::from_secs(15 * 60));

        let cli = parse(&["migration", "new", "add_room", "--workspace", "/w"]);
        assert_eq!(cli.workspace, Some(PathBuf::from("/w")));
        let Command::Migration(MigrationCommand::New(new)) = cli.command else {
            panic!("new")
        };
        assert_eq!(new.name, "add_room");
        let Command::Test(test) = parse(&["test", "--", "env::", "--nocapture"]).command else {
            panic!("test")
        };
        assert_eq!(test.cargo_args, ["env::", "--nocapture"]);
        assert!(matches!(
            parse(&["db", "url"]).command,
            Command::Db(DbCommand::Url)
        ));
        let Command::Smoke(smoke) = parse(&["smoke", "--url", "http://x", "--json"]).command else {
            panic!("smoke")
        };
        assert_eq!(smoke.url.as_deref(), Some("http://x"));
        assert!(smoke.json && smoke.image.is_none() && smoke.junit.is_none());
    }
}

#[cfg(test)]
mod golden;
