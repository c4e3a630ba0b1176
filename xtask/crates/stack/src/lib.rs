//! The local stack and the checks against it: `up`/`down` (`stack`: the seeded database and the
//! app containers on a private network) and `smoke` (the declared checks of smoke.toml against a
//! fresh isolated stack or a URL). `deploy` and `preview` run smoke on what they ship.

pub mod flags;

pub mod smoke;
pub mod stack;
