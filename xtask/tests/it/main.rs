//! xtask's integration tests, in one test binary (one link step instead of one per file), as
//! rust-analyzer keeps its slow tests. Each module is one area; `support` holds what they share.

mod base_hash;
mod docker_base;
mod docker_failures;
mod env;
mod runtime_image;
mod seed;
mod stack;
mod support;
mod worktree;
