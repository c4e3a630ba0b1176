//! The flags of `env` and `deploy`, with their help. The command table that puts every command
//! together is xtask's flags.rs.

use std::path::PathBuf;

use xtask_core::flags::Json;

#[derive(clap::Subcommand)]
pub enum EnvCommand {
    /// List what is missing or invalid for a target; secrets are masked.
    Check(EnvCheck),
    /// Write .env.example from the spec (with --check, fail when it is stale).
    Example(EnvExample),
    /// Set the Render service's variables from an env file, through Render's API: a diff
    /// first (secrets masked), then one request that replaces the list.
    Push(EnvPush),
}

#[derive(clap::Args)]
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

#[derive(clap::Args)]
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

/// A deployment target of the env spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EnvTarget {
    Production,
    Preview,
    Local,
}

impl From<EnvTarget> for openeu_env::Target {
    fn from(target: EnvTarget) -> Self {
        match target {
            EnvTarget::Production => openeu_env::Target::Production,
            EnvTarget::Preview => openeu_env::Target::Preview,
            EnvTarget::Local => openeu_env::Target::Local,
        }
    }
}

/// Who reads a variable of the env spec; `--help` lists each value with its doc comment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EnvReader {
    /// The service at runtime (Render's service settings in production).
    Service,
    /// The image build.
    Build,
    /// The deploy tool (registry credentials, Render and Supabase API keys).
    Deploy,
}

impl From<EnvReader> for openeu_env::Reader {
    fn from(reader: EnvReader) -> Self {
        match reader {
            EnvReader::Service => openeu_env::Reader::Service,
            EnvReader::Build => openeu_env::Reader::Build,
            EnvReader::Deploy => openeu_env::Reader::Deploy,
        }
    }
}

#[derive(clap::Args)]
pub struct EnvExample {
    /// Only verify that .env.example is current.
    #[arg(long)]
    pub check: bool,
}

/// `cargo xtask deploy`: the deploy itself (`DeployRun`), or with a subcommand its status, list,
/// logs, rollback and blueprint; `--target` applies to both.
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Deploy {
    #[command(subcommand)]
    pub command: Option<DeployCommand>,
    /// The target whose Render service this acts on: its `service-id` in
    /// `[workspace.metadata.xtask.render]` (`RENDER_SERVICE_ID` overrides it).
    #[arg(long, global = true, default_value = "production")]
    pub target: String,
    #[command(flatten)]
    pub args: DeployRun,
}

/// `cargo xtask deploy [flags]`: the deploy itself.
#[derive(clap::Args)]
pub struct DeployRun {
    /// Print the plan (live now, what would ship, pending migrations) and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// How long to wait for a terminal status (15m, 90s, 1h).
    #[arg(long, default_value = "15m", value_parser = xtask_core::time::parse_duration)]
    pub timeout: std::time::Duration,
    /// How long the public URL may take to pass verification after `live`.
    #[arg(long, default_value = "60s", value_parser = xtask_core::time::parse_duration)]
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

#[derive(clap::Subcommand)]
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

#[derive(clap::Args)]
pub struct DeployList {
    /// How many deploys.
    #[arg(long, default_value_t = 10)]
    pub limit: u32,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct DeployLogs {
    /// The deploy (dep-…); default: the newest.
    #[arg(long, value_name = "ID")]
    pub deploy: Option<String>,
    /// How many of the last lines.
    #[arg(long, default_value_t = 100)]
    pub tail: u32,
}

#[derive(clap::Args)]
pub struct DeployRollback {
    /// The deploy to go back to (dep-…).
    pub deploy_id: Option<String>,
    /// How long to wait for the rollback to be live.
    #[arg(long, default_value = "15m", value_parser = xtask_core::time::parse_duration)]
    pub timeout: std::time::Duration,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct Blueprint {
    /// Only verify that render.yaml is current.
    #[arg(long)]
    pub check: bool,
}
