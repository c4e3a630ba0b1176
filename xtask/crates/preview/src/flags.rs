//! The flags of `preview`, with their help. The command table that puts every command together
//! is xtask's flags.rs.

#[derive(clap::Subcommand)]
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

#[derive(clap::Args)]
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
    #[arg(long, default_value = "15m", value_parser = xtask_core::time::parse_duration)]
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

#[derive(clap::Args)]
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

#[derive(clap::Args)]
pub struct PreviewList {
    /// Render's previews of the service and Supabase's branches of the project, side by side.
    #[arg(long)]
    pub remote: bool,
    /// Print JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct PreviewGc {
    /// Remove previews created longer ago than this (30m, 12h, 3d). Default, when --gone is not
    /// given either: 3d.
    #[arg(long, value_name = "AGE", value_parser = xtask_core::time::parse_age)]
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
