//! `cargo xtask test`: the README's test command. It first runs `setup` (so a fresh machine
//! needs nothing by hand), then the whole workspace's tests with real parts.

use anyhow::{Context, Result};

use crate::{flags, progress, setup, workspace::Workspace};

impl flags::Test {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        let step = progress::step("setup");
        setup::ensure(ws)?;
        step.done();
        let step = progress::step("cargo test --workspace");
        let sh = &ws.sh;
        let args = &self.cargo_args;
        xshell::cmd!(sh, "cargo test --workspace --locked {args...}")
            .run()
            .context("tests failed")?;
        step.done();
        Ok(())
    }
}
