//! The images: `base` (the content-addressed base image: toolchain and the app's external
//! dependencies, compiled, keyed on what it compiles) and `image` (the app image, built FROM
//! the current base, identified by its inputs' hash).

pub mod flags;

pub mod base;
pub mod image;
