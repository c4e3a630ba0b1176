//! `cargo xtask preview`: per-branch environments, here in Docker or on Render + Supabase. It
//! builds on xtask-ship (the stack, smoke and deploy's Render client), the last layer.

pub mod flags;

pub mod preview;
