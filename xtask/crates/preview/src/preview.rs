//! `cargo xtask preview up|down|list|gc [--remote]`: an isolated, seeded environment per git
//! branch. Locally (preview/local.rs) each branch gets its own network, database and app
//! container, side by side; remotely, a Supabase branch and a Render preview. `gc` removes what
//! people forget: previews older than an age, and those whose branch is gone.

use anyhow::Result;

use xtask_core::workspace::Workspace;

use crate::flags;

pub mod local;
pub mod names;
pub mod remote;
pub mod stub;
pub mod supabase;

// The flags name it here; it is xtask-core's, with the other durations and times.
pub use xtask_core::time::parse_age;

impl flags::PreviewCommand {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        match self {
            flags::PreviewCommand::Up(args) if args.remote => remote::up(ws, &args),
            flags::PreviewCommand::Up(args) => local::up(ws, &args),
            flags::PreviewCommand::Down(args) if args.remote => remote::down(ws, &args),
            flags::PreviewCommand::Down(args) => local::down(ws, &args),
            flags::PreviewCommand::List(args) if args.remote => remote::list(ws, &args),
            flags::PreviewCommand::List(args) => local::list(ws, &args),
            flags::PreviewCommand::Gc(args) if args.remote => remote::gc(ws, &args),
            flags::PreviewCommand::Gc(args) => local::gc(ws, &args),
        }
    }
}
