//! The commands that make the machine and the images: `setup` (Docker engine, registry,
//! upstream images), `base` (the content-addressed base image), `image` (the app image) and
//! `test` (the README's test command). They need the infrastructure of xtask-core only, so this
//! crate compiles beside xtask-data.

pub mod flags;

pub mod base;
pub mod image;
pub mod setup;
pub mod test;
