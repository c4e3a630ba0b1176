//! `cargo xtask bench`: benchmarks that print figures measured side by side. It builds on
//! xtask-ship and compiles beside xtask-preview.

pub mod flags;

pub mod bench;
