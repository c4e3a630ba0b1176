//! The flags of `setup`. The command table that puts every command together is xtask's
//! flags.rs.

#[derive(clap::Args)]
pub struct Setup {}
