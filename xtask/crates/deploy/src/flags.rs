//! The flags of `env` and `deploy`, with their help. The
//! command table that puts every command together is xtask's flags.rs.

use std::path::PathBuf;

use clap::{ArgMatches, Command, ValueEnum, builder::PossibleValue};
use xtask_core::cli::{Flags, help};

pub use xtask_core::flags::Json;

xtask_core::subcommands! {
    pub enum EnvCommand {
        /// List what is missing or invalid for a target; secrets are masked.
        Check(EnvCheck),
        /// Write .env.example from the spec (with --check, fail when it is stale).
        Example(EnvExample),
        /// Set the Render service's variables from an env file, through Render's API: a diff
        /// first (secrets masked), then one request that replaces the list.
        Push(EnvPush),
    }
}

xtask_core::args! {
    pub struct EnvCheck {
        /// Read variables from this file (KEY=VALUE lines) instead of the environment.
        #[arg(long, value_name = "FILE")]
        pub env_file: Option<PathBuf>,
        /// The deployment target; derived as the service derives it when not given.
        #[arg(long, value_enum)]
        pub target: Option<EnvTarget>,
        /// Whose variables to check (repeatable). Default: the service for production and preview
        /// (the variables set in Render's service settings), every reader for local.
        #[arg(long = "reader", value_enum, value_name = "READER")]
        pub readers: Vec<EnvReader>,
        /// Check the variables set on the Render service (`RENDER_API_KEY`, `RENDER_SERVICE_ID`)
        /// instead: missing, unknown (with "did you mean"), malformed, not read by the service, and
        /// with --env-file, values that differ from the file. Target default: production.
        #[arg(long, conflicts_with = "readers")]
        pub service: bool,
        /// Print JSON on stdout.
        #[arg(long)]
        pub json: bool,
    }
}

xtask_core::args! {
    pub struct EnvPush {
        /// The env file whose service variables are set (the values come from it only, never
        /// from the command line).
        #[arg(long, value_name = "FILE")]
        pub env_file: PathBuf,
        /// The deployment target whose required variables must be set afterwards (default
        /// production).
        #[arg(long, value_enum)]
        pub target: Option<EnvTarget>,
        /// Show the diff and change nothing.
        #[arg(long)]
        pub dry_run: bool,
        /// Also remove the service's variables that the file lacks (kept otherwise).
        #[arg(long)]
        pub prune: bool,
        /// Print JSON on stdout.
        #[arg(long)]
        pub json: bool,
    }
}

/// A deployment target of the env spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvTarget {
    Production,
    Preview,
    Local,
}

impl ValueEnum for EnvTarget {
    fn value_variants<'a>() -> &'a [Self] {
        &[Self::Production, Self::Preview, Self::Local]
    }
    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(match self {
            Self::Production => "production",
            Self::Preview => "preview",
            Self::Local => "local",
        }))
    }
}

xtask_core::value!(EnvTarget, Some(clap::value_parser!(EnvTarget)));

impl From<EnvTarget> for openeu_env::Target {
    fn from(target: EnvTarget) -> Self {
        match target {
            EnvTarget::Production => openeu_env::Target::Production,
            EnvTarget::Preview => openeu_env::Target::Preview,
            EnvTarget::Local => openeu_env::Target::Local,
        }
    }
}

/// Who reads a variable of the env spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvReader {
    /// The service at runtime (Render's service settings in production).
    Service,
    /// The image build.
    Build,
    /// The deploy tool (registry credentials, Render and Supabase API keys).
    Deploy,
}

impl ValueEnum for EnvReader {
    fn value_variants<'a>() -> &'a [Self] {
        &[Self::Service, Self::Build, Self::Deploy]
    }
    // The help of each value is its variant's doc comment, as `--help` lists it.
    fn to_possible_value(&self) -> Option<PossibleValue> {
        let (name, doc) = match self {
            Self::Service => (
                "service",
                "The service at runtime (Render's service settings in production).",
            ),
            Self::Build => ("build", "The image build."),
            Self::Deploy => (
                "deploy",
                "The deploy tool (registry credentials, Render and Supabase API keys).",
            ),
        };
        Some(PossibleValue::new(name).help(help(&[doc])))
    }
}

xtask_core::value!(EnvReader, Some(clap::value_parser!(EnvReader)));

impl From<EnvReader> for openeu_env::Reader {
    fn from(reader: EnvReader) -> Self {
        match reader {
            EnvReader::Service => openeu_env::Reader::Service,
            EnvReader::Build => openeu_env::Reader::Build,
            EnvReader::Deploy => openeu_env::Reader::Deploy,
        }
    }
}

xtask_core::args! {
    pub struct EnvExample {
        /// Only verify that .env.example is current.
        #[arg(long)]
        pub check: bool,
    }
}

/// `cargo xtask deploy`: the deploy itself (`DeployRun`), or with a subcommand its status, list,
/// logs, rollback and blueprint; `--target` applies to both.
pub struct Deploy {
    pub command: Option<DeployCommand>,
    pub target: String,
    pub args: DeployRun,
}

impl Flags for Deploy {
    fn args(cmd: Command) -> Command {
        let cmd = DeployCommand::subcommands(cmd.args_conflicts_with_subcommands(true)).arg(
            <String as xtask_core::cli::Field>::arg(clap::Arg::new("target"))
                .long("target")
                .global(true)
                .default_value("production")
                .required(false)
                .value_name("TARGET")
                .help(help(&[
                    "The target whose Render service this acts on: its `service-id` in",
                    "`[workspace.metadata.xtask.render]` (`RENDER_SERVICE_ID` overrides it).",
                ])),
        );
        DeployRun::args(cmd)
    }
    fn from_matches(matches: &ArgMatches) -> Self {
        Self {
            command: matches
                .subcommand_name()
                .map(|_| DeployCommand::from_matches(matches)),
            target: xtask_core::cli::get_required(matches, "target"),
            args: DeployRun::from_matches(matches),
        }
    }
}

xtask_core::args! {
    /// `cargo xtask deploy [flags]`: the deploy itself.
    pub struct DeployRun {
        /// Print the plan (live now, what would ship, pending migrations) and change nothing.
        #[arg(long)]
        pub dry_run: bool,
        /// Print the result as one JSON object on stdout.
        #[arg(long)]
        pub json: bool,
        /// How long to wait for a terminal status (15m, 90s, 1h).
        #[arg(long, default_value = "15m", value_parser = crate::deploy::parse_duration)]
        pub timeout: std::time::Duration,
        /// How long the public URL may take to pass verification after `live`.
        #[arg(long, default_value = "60s", value_parser = crate::deploy::parse_duration)]
        pub verify_timeout: std::time::Duration,
        /// Do not run the smoke checks (recorded in the JSON result).
        #[arg(long)]
        pub skip_smoke: bool,
        /// Accept uncommitted changes (only with --dry-run: refused for production).
        #[arg(long)]
        pub allow_dirty: bool,
        /// When another deploy of the service is in progress, wait for it instead of refusing.
        #[arg(long)]
        pub wait_for_running: bool,
        /// When another deployer holds the deploy lock, wait for it instead of refusing.
        #[arg(long)]
        pub wait: bool,
        /// When the live deploy fails verification, roll back to the previous one (exit 6).
        #[arg(long)]
        pub rollback_on_failure: bool,
        /// On Ctrl-C during the wait, cancel the deploy on Render (default: it continues).
        #[arg(long)]
        pub cancel_on_interrupt: bool,
        /// Deploy this already pushed image (`<registry>/<name>@sha256:…`) instead of building.
        #[arg(long, value_name = "REF@DIGEST")]
        pub image: Option<String>,
        /// Trigger through `RENDER_DEPLOY_HOOK_URL` (the trigger of last resort), then wait on the
        /// deploy it created with the API key.
        #[arg(long)]
        pub via_hook: bool,
    }
}

xtask_core::subcommands! {
    pub enum DeployCommand {
        /// The live deploy (id, commit or image, since when), any deploy in progress, and the
        /// service's health now.
        Status(Json),
        /// Recent deploys with status, trigger, commit or image and times.
        List(DeployList),
        /// The log lines of a deploy (default: the newest).
        Logs(DeployLogs),
        /// Roll back to an earlier deploy (default: the newest earlier one that went live with a
        /// different commit or image); waits and verifies. Migrations are not rolled back.
        Rollback(DeployRollback),
        /// Render render.yaml (the Render Blueprint) from the env spec and the xtask metadata
        /// (--check: verify it).
        Blueprint(Blueprint),
    }
}

xtask_core::args! {
    pub struct DeployList {
        /// How many deploys.
        #[arg(long, default_value_t = 10)]
        pub limit: u32,
        /// Print JSON on stdout.
        #[arg(long)]
        pub json: bool,
    }
}

xtask_core::args! {
    pub struct DeployLogs {
        /// The deploy (dep-…); default: the newest.
        #[arg(long, value_name = "ID")]
        pub deploy: Option<String>,
        /// How many of the last lines.
        #[arg(long, default_value_t = 100)]
        pub tail: u32,
    }
}

xtask_core::args! {
    pub struct DeployRollback {
        /// The deploy to go back to (dep-…).
        pub deploy_id: Option<String>,
        /// How long to wait for the rollback to be live.
        #[arg(long, default_value = "15m", value_parser = crate::deploy::parse_duration)]
        pub timeout: std::time::Duration,
        /// Print JSON on stdout.
        #[arg(long)]
        pub json: bool,
    }
}

xtask_core::args! {
    pub struct Blueprint {
        /// Only verify that render.yaml is current.
        #[arg(long)]
        pub check: bool,
    }
}
