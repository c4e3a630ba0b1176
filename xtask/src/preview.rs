//! `cargo xtask preview up|down|list|gc [--remote]`: an isolated, seeded environment per git
//! branch. Locally (preview/local.rs) each branch gets its own network, database and app
//! container, side by side; remotely, a Supabase branch and a Render preview. `gc` removes what
//! people forget: previews older than an age, and those whose branch is gone.

use anyhow::Result;

use crate::{flags, workspace::Workspace};

pub mod local;
pub mod names;

pub use names::parse_age;

impl flags::PreviewCommand {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        match self {
            flags::PreviewCommand::Up(args) => {
                if args.remote {
                    anyhow::bail!("preview up --remote is not available yet");
                }
                local::up(ws, &args)
            }
            flags::PreviewCommand::Down(args) => {
                if args.remote {
                    anyhow::bail!("preview down --remote is not available yet");
                }
                local::down(ws, &args)
            }
            flags::PreviewCommand::List(args) => {
                if args.remote {
                    anyhow::bail!("preview list --remote is not available yet");
                }
                local::list(ws, &args)
            }
            flags::PreviewCommand::Gc(args) => {
                if args.remote {
                    anyhow::bail!("preview gc --remote is not available yet");
                }
                local::gc(ws, &args)
            }
        }
    }
}
