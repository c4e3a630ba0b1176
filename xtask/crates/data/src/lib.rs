//! The commands about the database's contents: `seed` (supabase/seed.sql from the fixtures),
//! `db` (the local database and pushes to remote ones) and `migration`. They need the
//! infrastructure of xtask-core only, so this crate compiles beside xtask-images.

pub mod flags;

pub mod db;
pub mod migration;
pub mod seed;
