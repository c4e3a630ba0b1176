//! The whole command-line surface of `cargo xtask`, in one file: every command, subcommand and
//! flag with its help. Each task implements `run` on its own flag type, in its own module
//! (`impl flags::Seed { pub fn run(self, ws) }` in seed.rs), so this file shows the command
//! table and nothing else.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Build, test and deploy the OpenEU backend",
    version
)]
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

#[derive(Subcommand)]
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
    /// Benchmarks that print figures measured side by side.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Run the whole test suite with real parts (Docker engine, registry, PostgreSQL).
    Test(Test),
}

#[derive(Args)]
pub struct Blueprint {
    /// Only verify that render.yaml is current.
    #[arg(long)]
    pub check: bool,
}

impl Command {
    /// The command's name as typed, for the README's command table.
    pub fn names() -> Vec<String> {
        use clap::CommandFactory;
        Xtask::command()
            .get_subcommands()
            .map(|c| c.get_name().to_owned())
            .collect()
    }
}

#[derive(Args)]
pub struct Doctor {
    /// Check the production side instead: the Render API key and service, the registry's
    /// credentials, and the production database (TLS, migration history).
    #[arg(long)]
    pub remote: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct Setup {}

#[derive(Subcommand)]
pub enum BaseCommand {
    /// Print the content hash of everything that goes into the base image.
    Hash(BaseHash),
    /// Show the base tag, whether it exists locally and in the registry, and whether the
    /// Dockerfile's pin is current.
    Status(Json),
    /// Build the base image, only when its tag exists neither locally nor in the registry.
    Build(BaseBuild),
    /// Write (or with --check, verify) the base reference pinned in Dockerfile.
    Pin(BasePin),
    /// Name the inputs that differ between an existing base image and the current workspace.
    Diff(BaseDiff),
}

/// A command whose only flag is `--json`.
#[derive(Args)]
pub struct Json {
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct BaseHash {
    /// Print the digest of every input.
    #[arg(long)]
    pub explain: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct BaseBuild {
    /// Push the image to the registry (logging in with `DOCKER_REGISTRY_USERNAME/PASSWORD`).
    #[arg(long)]
    pub push: bool,
    /// Build even when the tag already exists.
    #[arg(long)]
    pub force: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct BasePin {
    /// Only verify the pin; exit non-zero when it is stale.
    #[arg(long)]
    pub check: bool,
}

#[derive(Args)]
pub struct BaseDiff {
    /// A base tag (32 hex characters, as `base hash` prints) or a full image reference.
    #[arg(value_parser = parse_base_image)]
    pub image: BaseImage,
}

/// What `base diff` compares against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BaseImage {
    /// A tag of the configured base repository.
    Tag(String),
    /// `[registry/]name[:tag][@digest]`.
    Reference(String),
}

fn parse_base_image(text: &str) -> Result<BaseImage, String> {
    if text.is_empty() || text.chars().any(char::is_whitespace) {
        return Err("expected a base tag or an image reference, without spaces".to_owned());
    }
    if text.contains([':', '/', '@']) {
        return Ok(BaseImage::Reference(text.to_owned()));
    }
    if text.len() == 32
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Ok(BaseImage::Tag(text.to_owned()));
    }
    Err(format!(
        "`{text}` is neither a base tag (32 lower-case hex characters, as `cargo xtask base hash` prints) nor an image reference (registry/name:tag)"
    ))
}

#[derive(Subcommand)]
pub enum ImageCommand {
    /// Build the app image FROM the current base (building or pulling the base only if needed).
    Build(Json),
}

#[derive(Subcommand)]
pub enum EnvCommand {
    /// List what is missing or invalid for a target; secrets are masked.
    Check(EnvCheck),
    /// Write .env.example from the spec (with --check, fail when it is stale).
    Example(EnvExample),
    /// Set the Render service's variables from an env file, through Render's API: a diff
    /// first (secrets masked), then one request that replaces the list.
    Push(EnvPush),
}

#[derive(Args)]
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

#[derive(Args)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
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

/// Who reads a variable of the env spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
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

#[derive(Args)]
pub struct EnvExample {
    /// Only verify that .env.example is current.
    #[arg(long)]
    pub check: bool,
}

#[derive(Args)]
pub struct Seed {
    /// Only verify that supabase/seed.sql is current; exit non-zero with a diff otherwise.
    #[arg(long)]
    pub check: bool,
}

#[derive(Subcommand)]
pub enum DbCommand {
    /// Start the local database (building its image if its inputs changed) and wait until a
    /// real connection works.
    Start,
    /// Stop and remove the container; the data volume stays.
    Stop,
    /// Rebuild the database from the migrations and the seed, then swap it in.
    Reset(DbReset),
    /// Print the local connection string.
    Url,
    /// Apply the pending migrations to a remote database (history in the Supabase CLI's format).
    Push(DbPush),
}

#[derive(Args)]
pub struct DbPush {
    /// The database (default: `PRODUCTION_DATABASE_URL`). Its password never reaches argv.
    #[arg(long, value_name = "URL")]
    pub db_url: Option<String>,
    /// Only list the pending migrations (after the drift and order checks).
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct DbReset {
    /// Reset this database instead of the local one (migrations and seed applied in place).
    #[arg(long, value_name = "URL")]
    pub db_url: Option<String>,
    /// Confirm resetting a database that is not on this machine.
    #[arg(long)]
    pub yes: bool,
    /// Allow a remote --db-url without sslmode=require or stronger.
    #[arg(long)]
    pub allow_plaintext: bool,
}

#[derive(Subcommand)]
pub enum MigrationCommand {
    /// Create supabase/migrations/<YYYYMMDDHHMMSS>_<NAME>.sql (UTC, after the newest one) and
    /// print its path.
    New(MigrationNew),
}

#[derive(Args)]
pub struct MigrationNew {
    /// What the migration does, in lower-case letters, digits and `_` (e.g. add_room_to_meetings).
    pub name: String,
}

#[derive(Args)]
pub struct Up {}

#[derive(Args)]
pub struct Down {}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Deploy {
    #[command(subcommand)]
    pub command: Option<DeployCommand>,
    /// The target whose Render service this acts on: its `service-id` in
    /// `[workspace.metadata.xtask.render]` (`RENDER_SERVICE_ID` overrides it).
    #[arg(
        long,
        global = true,
        default_value = "production",
        value_name = "TARGET"
    )]
    pub target: String,
    #[command(flatten)]
    pub args: DeployRun,
}

/// `cargo xtask deploy [flags]`: the deploy itself.
#[derive(Args)]
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

#[derive(Subcommand)]
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

#[derive(Args)]
pub struct DeployList {
    /// How many deploys.
    #[arg(long, default_value_t = 10)]
    pub limit: u32,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct DeployLogs {
    /// The deploy (dep-…); default: the newest.
    #[arg(long, value_name = "ID")]
    pub deploy: Option<String>,
    /// How many of the last lines.
    #[arg(long, default_value_t = 100)]
    pub tail: u32,
}

#[derive(Args)]
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

#[derive(Args)]
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

#[derive(Subcommand)]
pub enum PreviewCommand {
    /// Start (or bring up to date) the preview of a branch: its own network, seeded database
    /// and app, on a port that stays the same for the branch; prints the URL.
    Up(PreviewUp),
    /// Remove a branch's preview (containers, network, database volume).
    Down(PreviewDown),
    /// The previews: branch, URL, image, commit, age, state, database size and memory use.
    List(PreviewList),
    /// Remove previews older than --older-than, and with --gone those whose branch was deleted
    /// or merged into the main branch.
    Gc(PreviewGc),
}

#[derive(Args)]
pub struct PreviewUp {
    /// The git branch (default: the current one).
    #[arg(long, value_name = "NAME")]
    pub branch: Option<String>,
    /// A Supabase branch and a Render preview instead of local containers.
    #[arg(long)]
    pub remote: bool,
    /// With --remote: the image the Render preview runs (default: the service's image
    /// repository at the branch's commit, as CI pushes it).
    #[arg(long, value_name = "REF", requires = "remote")]
    pub image: Option<String>,
    /// With --remote: how long Supabase and Render may take (15m, 90s, 1h).
    #[arg(long, default_value = "15m", value_parser = crate::deploy::parse_duration)]
    pub timeout: std::time::Duration,
    /// With --remote: do not run the read-only smoke checks against the preview's URL.
    #[arg(long)]
    pub skip_smoke: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// The creation time (Unix seconds) a new preview records, instead of now: how tests give a
    /// preview an age without waiting.
    #[arg(long, hide = true, value_name = "UNIX_SECONDS")]
    pub created_at: Option<u64>,
}

#[derive(Args)]
pub struct PreviewDown {
    /// The git branch whose preview goes.
    pub branch: String,
    /// The Render preview and the Supabase branch instead of the local preview.
    #[arg(long)]
    pub remote: bool,
    /// Do not ask before deleting remote resources.
    #[arg(long)]
    pub yes: bool,
}

#[derive(Args)]
pub struct PreviewList {
    /// Render's previews of the service and Supabase's branches of the project, side by side.
    #[arg(long)]
    pub remote: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct PreviewGc {
    /// Remove previews created longer ago than this (30m, 12h, 3d). Default, when --gone is not
    /// given either: 3d.
    #[arg(long, value_name = "AGE", value_parser = crate::preview::parse_age)]
    pub older_than: Option<std::time::Duration>,
    /// Remove previews whose branch no longer exists locally or is merged into the main branch.
    #[arg(long)]
    pub gone: bool,
    /// Only list what would be removed.
    #[arg(long)]
    pub dry_run: bool,
    /// Remote previews (Render + Supabase) instead of local ones.
    #[arg(long)]
    pub remote: bool,
    /// Do not ask before deleting remote resources.
    #[arg(long)]
    pub yes: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum BenchCommand {
    /// The base image: cache hits vs docker builds, false rebuilds, hashing at scale.
    Base(BenchBase),
    /// The API under load vs the bare query it runs, on the same database.
    Api(BenchApi),
    /// Seed rendering throughput, INSERT vs COPY, and the local stack's times.
    Seed(BenchSeed),
    /// `deploy` against the Render stub: xtask's own time, how fast it notices `live`, and the
    /// bytes a source-only change pushes (--cold-build: Render's Git-backed build).
    Deploy(BenchDeploy),
    /// Smoke: time to verdict, per-check latency, four runs at once vs one, sweep latency.
    Smoke(BenchSmoke),
    /// The runtime image vs the debian-slim runtime it replaced: size, pull, start to healthy.
    Image(BenchImage),
    /// Local previews: the first from nothing vs the second of another branch, memory per
    /// preview, `preview list` with five running.
    Preview(BenchPreview),
    /// xtask's own compile: cold on a fresh clone, no-op, and after a one-line edit, against a
    /// reference commit exported beside the working tree.
    Compile(BenchCompile),
}

#[derive(Args)]
pub struct BenchCompile {
    /// The commit to compare with (default: the last commit before xtask was split into crates).
    #[arg(long, default_value = "c71ab7c", value_name = "REV")]
    pub against: String,
    /// Cold compiles of each tree, alternating (about a minute each).
    #[arg(long, default_value_t = 2)]
    pub runs: usize,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct BenchPreview {
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct BenchDeploy {
    /// Timed deploys (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Also time a Git-backed Render build with the pinned base against a cold build of the same
    /// Dockerfile (several minutes).
    #[arg(long)]
    pub cold_build: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct BenchBase {
    /// Timed repetitions of the quick measurements (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Only the key's own figures, without Docker: the decision time (fresh and warm cargo
    /// home) and the precision over a generated commit history against cargo's unit graph,
    /// docker's manifest-COPY layer key and cargo-chef's recipe.
    #[arg(long)]
    pub precision: bool,
    /// Commits in the generated history of --precision.
    #[arg(long, default_value_t = 120)]
    pub commits: usize,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct BenchApi {
    /// Seconds each load generator runs.
    #[arg(long, default_value_t = 10)]
    pub seconds: u32,
    /// Concurrent connections, the same for wrk and pgbench.
    #[arg(long, default_value_t = 8)]
    pub connections: u32,
    /// Also measure the API through pgbouncer in transaction mode (as through Supabase's
    /// pooler on 6543) against its direct connection.
    #[arg(long)]
    pub via_pooler: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct BenchSeed {
    /// Rows in the generated fixture.
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: u32,
    /// Skip the local stack figures (db reset, warm up).
    #[arg(long)]
    pub no_stack: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct BenchImage {
    /// Timed repetitions of the pulls and starts (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct BenchSmoke {
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct Test {
    /// Arguments passed on to `cargo test` (after `--`), e.g. a test name filter.
    #[arg(last = true)]
    pub cargo_args: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_diff_arguments_are_checked_before_any_work() {
        assert_eq!(
            parse_base_image("0123456789abcdef0123456789abcdef"),
            Ok(BaseImage::Tag(
                "0123456789abcdef0123456789abcdef".to_owned()
            ))
        );
        assert!(matches!(
            parse_base_image("127.0.0.1:5000/base:abc"),
            Ok(BaseImage::Reference(_))
        ));
        let err = parse_base_image("nonsense").unwrap_err();
        assert!(err.contains("neither a base tag"), "{err}");
    }

    #[test]
    fn the_cli_is_consistent() {
        use clap::CommandFactory;
        Xtask::command().debug_assert();
    }
}
