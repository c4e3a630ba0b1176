//! The command line of `cargo lab`: the global flags and `bench <what>` with each benchmark's
//! flags and help.

use std::path::PathBuf;

/// Benchmarks of the OpenEU backend and its tooling, measured side by side.
#[derive(clap::Parser)]
#[command(name = "cargo lab", bin_name = "cargo lab", version)]
pub struct Lab {
    /// Operate on another workspace instead of this repository.
    #[arg(long, global = true, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    #[command(subcommand)]
    pub command: LabCommand,
}

#[derive(clap::Subcommand)]
pub enum LabCommand {
    /// Benchmarks that print figures measured side by side.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(clap::Subcommand)]
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

#[derive(clap::Args)]
pub struct BenchCompile {
    /// The commit to compare with (default: the last commit before the lab left xtask and the
    /// well-kept crates came back).
    #[arg(long, default_value = "3aceda2", value_name = "REV")]
    pub against: String,
    /// Cold compiles of each tree, alternating (about a minute each).
    #[arg(long, default_value_t = 2)]
    pub runs: usize,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct BenchPreview {
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct BenchDeploy {
    /// Timed deploys (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Also time a Git-backed Render build with the pinned base against a cold build of the
    /// same Dockerfile (several minutes).
    #[arg(long)]
    pub cold_build: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
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

#[derive(clap::Args)]
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

#[derive(clap::Args)]
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

#[derive(clap::Args)]
pub struct BenchImage {
    /// Timed repetitions of the pulls and starts (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct BenchSmoke {
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}
