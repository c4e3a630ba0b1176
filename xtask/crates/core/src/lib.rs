//! xtask's infrastructure, the layer every command builds on: `workspace` (paths and
//! configuration, found at run time), `process` (children with deadlines, and `wait_until`, the
//! one deadline-bounded wait), `progress`, `files`, `http`, `https`, `pgtls` (the TLS policy for
//! remote databases), `lock` (one command at a time per stack), `failpoint` (deterministic kills
//! for tests), `owner` (runs, their labels and the sweep of dead ones), `signals` (the one owner
//! of SIGINT and SIGTERM), `time` (dates, times, durations and ages), `encoding` (base64,
//! percent-encoding), `net` (free loopback ports), `docker` (the only module that spells docker's
//! command line), `tables` (derived structs read from TOML tables only), `render` and `supabase`
//! (the clients of Render's and Supabase's APIs) and the flag types that several commands share.
//! Each helper has one copy, here, used by the commands, the benchmarks and the integration
//! tests alike. It is a crate of its own so that the command crates above it compile side by
//! side.

pub mod flags;

pub mod docker;
pub mod encoding;
pub mod failpoint;
pub mod files;
pub mod http;
pub mod https;
pub mod lock;
pub mod net;
pub mod owner;
pub mod pgtls;
pub mod process;
pub mod progress;
pub mod render;
pub mod signals;
pub mod supabase;
pub mod tables;
pub mod time;
pub mod workspace;
