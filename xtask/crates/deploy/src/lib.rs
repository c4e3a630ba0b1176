//! Shipping to Render: `deploy` (preflight, image, migrations, trigger, wait, verify, rollback;
//! `status`, `list`, `logs`, `blueprint`) and `env` (the service's variables checked against
//! the env spec and pushed to Render). Both speak to Render through xtask-core's `render`
//! client; deploy's preflight uses env's comparison.

pub mod flags;

pub mod deploy;
pub mod env;
