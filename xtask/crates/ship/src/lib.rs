//! The commands that run and ship the app: `up`/`down` (`stack`), `smoke`, `env`, `deploy` and
//! `doctor`. They build on both xtask-images and xtask-data. `env` and `deploy` use each other
//! (the Render API and the env comparison), which is why they share this crate. xtask-bench
//! compiles beside it, xtask-preview after it.

pub mod flags;

pub mod deploy;
pub mod doctor;
pub mod env;
pub mod smoke;
pub mod stack;
