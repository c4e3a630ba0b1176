//! `cargo xtask preview up|down|list|gc [--remote]`: an isolated, seeded environment per git
//! branch. Locally (preview/local.rs brings one up, preview/inventory.rs lists and removes them) each branch gets its own network, database and app
//! container, side by side; remotely, a Supabase branch and a Render preview. `gc` removes what
//! people forget: previews older than an age, and those whose branch is gone.

use anyhow::Result;

use xtask_core::workspace::Workspace;

use crate::flags;

pub mod inventory;
pub mod local;
pub mod names;
pub mod remote;

impl flags::PreviewCommand {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        match self {
            flags::PreviewCommand::Up(args) if args.remote => remote::up(ws, &args),
            flags::PreviewCommand::Up(args) => local::up(ws, &args),
            flags::PreviewCommand::Down(args) if args.remote => remote::down(ws, &args),
            flags::PreviewCommand::Down(args) => inventory::down(ws, &args),
            flags::PreviewCommand::List(args) if args.remote => remote::list(ws, &args),
            flags::PreviewCommand::List(args) => inventory::list(ws, &args),
            flags::PreviewCommand::Gc(args) if args.remote => remote::gc(ws, &args),
            flags::PreviewCommand::Gc(args) => inventory::gc(ws, &args),
        }
    }
}
