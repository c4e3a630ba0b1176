//! The flags of `setup`. The command table that puts every command together is xtask's
//! flags.rs.

xtask_core::args! {
    pub struct Setup {}
}
