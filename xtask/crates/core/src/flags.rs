//! Flag types that several commands share. Each command's own flags live in the crate that
//! implements it (a type's inherent `run` must live in its crate); the command table that puts
//! them together is xtask's flags.rs.

/// A command whose only flag is `--json`.
#[derive(clap::Args)]
pub struct Json {
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}
