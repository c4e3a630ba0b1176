//! The command line of `cargo lab`: the global flags and `bench <what>` with each benchmark's
//! flags and help.

use std::path::PathBuf;

use clap::ArgMatches;
use xtask_core::cli::Flags;

/// `cargo lab`: the flags every command takes, and the command.
pub struct Lab {
    pub workspace: Option<PathBuf>,
    pub command: LabCommand,
}

xtask_core::args! {
    /// The flags that every command takes, before or after the command's name.
    pub struct Globals {
        /// Operate on another workspace instead of this repository.
        #[arg(long, global = true, value_name = "DIR")]
        pub workspace: Option<PathBuf>,
    }
}

xtask_core::subcommands! {
    pub enum LabCommand {
        /// Benchmarks that print figures measured side by side.
        Bench(BenchCommand),
    }
}

impl Lab {
    /// The whole command line of the lab.
    pub fn command() -> clap::Command {
        let cmd = clap::Command::new("cargo lab")
            .bin_name("cargo lab")
            .about("Benchmarks of the OpenEU backend and its tooling, measured side by side")
            .version(env!("CARGO_PKG_VERSION"));
        LabCommand::args(Globals::args(cmd))
    }

    /// Parses `argv` (its first item is the program's name); prints the help or error and exits
    /// when asked or wrong.
    pub fn parse_from<I, T>(argv: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches: ArgMatches = Self::command().get_matches_from(argv);
        Self {
            workspace: Globals::from_matches(&matches).workspace,
            command: LabCommand::from_matches(&matches),
        }
    }
}

xtask_core::subcommands! {
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
}

xtask_core::args! {
    pub struct BenchCompile {
        /// The commit to compare with (default: the last commit before the lab left xtask and
        /// the well-kept crates came back).
        #[arg(long, default_value = "3aceda2", value_name = "REV")]
        pub against: String,
        /// Cold compiles of each tree, alternating (about a minute each).
        #[arg(long, default_value_t = 2)]
        pub runs: usize,
        /// Print JSON on stdout.
        #[arg(long)]
        pub json: bool,
    }
}

xtask_core::args! {
    pub struct BenchPreview {
        /// Print JSON on stdout.
        #[arg(long)]
        pub json: bool,
    }
}

xtask_core::args! {
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
}

xtask_core::args! {
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
}

xtask_core::args! {
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
}

xtask_core::args! {
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
}

xtask_core::args! {
    pub struct BenchImage {
        /// Timed repetitions of the pulls and starts (the median is reported).
        #[arg(long, default_value_t = 3)]
        pub runs: usize,
        /// Print JSON on stdout.
        #[arg(long)]
        pub json: bool,
    }
}

xtask_core::args! {
    pub struct BenchSmoke {
        /// Print JSON on stdout.
        #[arg(long)]
        pub json: bool,
    }
}
