//! xtask's integration tests, in one test binary (one link step instead of one per file), as
//! rust-analyzer keeps its slow tests. Each module is one area; `support` holds what they share.

// The tests start processes of their own: docker, cargo, the xtask binary.
#![allow(clippy::disallowed_methods)]

mod base_hash;
mod deploy;
mod docker_base;
mod docker_failures;
mod env;
mod env_remote;
mod everyday;
mod preview;
mod production;
mod reliability;
mod runtime_image;
mod seed;
mod smoke;
mod stack;
mod support;
mod worktree;
