//! The flags of `seed`, `db` and `migration`, with their help. The command table that puts
//! every command together is xtask's flags.rs.

#[derive(clap::Args)]
pub struct Seed {
    /// Only verify that supabase/seed.sql is current; exit non-zero with a diff otherwise.
    #[arg(long)]
    pub check: bool,
}

#[derive(clap::Subcommand)]
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
    /// Apply the pending migrations to a remote database (history in the Supabase CLI's
    /// format).
    Push(DbPush),
}

#[derive(clap::Args)]
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

#[derive(clap::Args)]
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

#[derive(clap::Subcommand)]
pub enum MigrationCommand {
    /// Create supabase/migrations/<YYYYMMDDHHMMSS>_<NAME>.sql (UTC, after the newest one) and
    /// print its path.
    New(MigrationNew),
}

#[derive(clap::Args)]
pub struct MigrationNew {
    /// What the migration does, in lower-case letters, digits and `_` (e.g.
    /// add_room_to_meetings).
    pub name: String,
}
