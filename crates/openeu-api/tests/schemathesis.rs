//! The service against its contract, explored by schemathesis as an outside client would: the
//! binary on a database with the migrations and the repository's seed, every operation of
//! openapi.json with generated valid and invalid input (`--mode all`), every check
//! (`--checks all`), a fixed seed and a bounded number of examples per operation. Zero failures
//! is the bar: no 5xx for any input, every answer in the contract's status codes, headers and
//! schemas, invalid input refused and valid input accepted.
//!
//! schemathesis comes from xtask's tools environment (`cargo xtask setup` installs the version
//! pinned in xtask/crates/images/src/setup/venv.rs); without it this test fails and says so.

mod support;

use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use support::{JWT_SECRET, Server, jwt, process::Service, repo_root};

/// Test cases per operation and phase; the run takes about a minute on two cores (4,000 cases).
const EXAMPLES: u32 = 200;
const SEED: u32 = 21;
/// The one exception to the checks, with its reason. A schema-valid request to /meetings can
/// still be refused, and rightly: `cursor` is opaque (only a `next_cursor` this API returned is
/// one, which no schema can generate), and `start` must be before `end`, a rule between two
/// parameters that JSON Schema cannot state. Both 400s are documented; every other operation
/// must accept every schema-valid request.
const CONFIG: &str = r#"
[[operations]]
include-name = "GET /meetings"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "404"]
"#;

/// The seed's first user (supabase/seed/auth.users.toml), who has a profile.
const SEEDED_USER: &str = "3f2c1a9e-8b7d-4c6e-9f0a-1b2c3d4e5f60";

/// Where xtask's tools environment keeps schemathesis: `$XDG_STATE_HOME/openeu-backend/venv`,
/// else `~/.local/state/openeu-backend/venv` (xtask-core's `state_dir`).
fn schemathesis() -> PathBuf {
    let state = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".local/state")
        });
    let program = state.join("openeu-backend/venv/bin/schemathesis");
    assert!(
        program.is_file(),
        "schemathesis is not installed at {}; run `cargo xtask setup` (it installs the pinned version into xtask's tools environment)",
        program.display()
    );
    program
}

#[test]
fn the_service_meets_its_contract_under_schemathesis() {
    let program = schemathesis();
    let db = Server::seeded();
    let service = Service::start(&[
        ("DATABASE_URL", &db.url()),
        ("SUPABASE_JWT_SECRET", JWT_SECRET),
        ("LOG_LEVEL", "warn"),
    ]);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = jwt(
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &format!(
            r#"{{"sub":"{SEEDED_USER}","aud":"authenticated","exp":{},"role":"authenticated"}}"#,
            now + 3600
        ),
        JWT_SECRET.as_bytes(),
    );
    // Hypothesis keeps an example database in the working directory: a scratch one.
    let scratch = std::env::temp_dir().join(format!("openeu-schemathesis-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let config = scratch.join("schemathesis.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let started = Instant::now();
    let output = Command::new(&program)
        .current_dir(&scratch)
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(repo_root().join("openapi.json"))
        .args(["--url", &format!("http://127.0.0.1:{}", service.port)])
        .args(["--checks", "all", "--mode", "all"])
        .args(["--seed", &SEED.to_string()])
        .args(["--max-examples", &EXAMPLES.to_string()])
        .args([
            "--generation-database",
            "none",
            "--no-color",
            "--workers",
            "2",
        ])
        .args(["--request-timeout", "15"])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&scratch);
    let elapsed = started.elapsed();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("schemathesis ran {elapsed:.0?}:\n{text}");
    assert!(
        output.status.success(),
        "schemathesis found failures (exit {:?}); the service's log:\n{}",
        output.status.code(),
        service.logs()
    );
    assert!(
        elapsed < Duration::from_secs(600),
        "the run took {elapsed:?}; lower EXAMPLES"
    );
}
