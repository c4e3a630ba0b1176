//! `cargo xtask preview`: per-branch environments, here in Docker or on Render + Supabase. It
//! builds on xtask-stack (the local stack, smoke) and xtask-deploy, the last room.

pub mod flags;

pub mod preview;
