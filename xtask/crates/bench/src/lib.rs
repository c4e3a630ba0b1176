//! `cargo xtask bench`: benchmarks that print figures measured side by side. It needs
//! xtask-images and xtask-data, not xtask-ship (`bench deploy` runs the xtask binary against
//! Render's stub, which lives in xtask-core), so it compiles beside xtask-ship.

pub mod flags;

pub mod bench;
