//! `cargo xtask setup`: what the machine needs, installed and started idempotently (the Docker
//! engine, the local registry, the upstream images or their local stand-ins, PostgreSQL, the
//! tools' Python venv). `image`, `up`, `smoke` and `test` call it first; `doctor` reports on it.

pub mod flags;

pub mod setup;
