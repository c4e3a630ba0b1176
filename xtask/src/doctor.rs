//! `cargo xtask doctor`: one line per part the project needs, each with the fix when it is
//! missing. It changes nothing (beyond sweeping the leftovers of dead runs, owner.rs);
//! `cargo xtask setup` applies the fixes. `--remote` checks the production side instead
//! (doctor/remote.rs).

mod remote;

use anyhow::{Result, bail};
use serde::Serialize;

use xtask_core::{
    docker::{Docker, registry},
    process,
    workspace::Workspace,
};
use xtask_setup::setup::{self, standin};

use crate::flags;

/// One line of the report, and one element of `doctor --json` (fields in alphabetical order,
/// the order the keys have always been printed in; `fix` is null when there is none).
#[derive(Serialize)]
struct Check {
    detail: String,
    fix: Option<String>,
    name: String,
    ok: bool,
}

impl Check {
    fn new(name: impl Into<String>, outcome: Result<String, (String, String)>) -> Check {
        match outcome {
            Ok(detail) => Check {
                name: name.into(),
                ok: true,
                detail,
                fix: None,
            },
            Err((detail, fix)) => Check {
                name: name.into(),
                ok: false,
                detail,
                fix: Some(fix),
            },
        }
    }
}

impl flags::Doctor {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        let checks = if self.remote {
            remote::checks(ws)
        } else {
            checks(ws)
        };
        let bad = if self.remote { "FAIL   " } else { "MISSING" };
        if self.json {
            println!("{}", serde_json::to_string_pretty(&checks)?);
        } else {
            for check in &checks {
                let mark = if check.ok { "ok     " } else { bad };
                match &check.fix {
                    Some(fix) if !check.ok => {
                        println!("{mark} {:<28} {} — fix: {fix}", check.name, check.detail);
                    }
                    _ => println!("{mark} {:<28} {}", check.name, check.detail),
                }
            }
        }
        let failed = checks.iter().filter(|c| !c.ok).count();
        if failed > 0 {
            if self.remote {
                bail!("{failed} remote check(s) failed; each line above names its fix");
            }
            bail!("{failed} check(s) failed; `cargo xtask setup` fixes what it can");
        }
        Ok(())
    }
}

fn checks(ws: &Workspace) -> Vec<Check> {
    let setup_fix = Some("cargo xtask setup".to_owned());
    let docker = Docker::new(ws);
    let mut checks = Vec::new();
    let client = docker.client_version();
    checks.push(Check {
        name: "docker client".into(),
        ok: client.is_some(),
        detail: client.clone().unwrap_or_else(|| "not on PATH".into()),
        fix: Some("install the docker CLI (Debian: apt-get install docker.io)".into()),
    });
    let engine = docker.require_engine();
    if engine.is_ok() {
        xtask_core::owner::sweep_quietly(&docker);
    }
    checks.push(Check {
        name: "docker engine".into(),
        ok: engine.is_ok(),
        detail: match &engine {
            Ok(version) => format!("running, {version}"),
            Err(err) => format!("{err:#}"),
        },
        fix: setup_fix.clone(),
    });
    let reg = registry::ping(&ws.config.registry);
    checks.push(Check {
        name: format!("registry {}", ws.config.registry),
        ok: reg.is_ok(),
        detail: match &reg {
            Ok(()) => "answers".into(),
            Err(err) => format!("{err:#}"),
        },
        fix: if ws.config.registry_is_local() {
            setup_fix.clone()
        } else {
            Some("check DOCKER_REGISTRY_SERVER and the network".into())
        },
    });
    match setup::upstream_images(ws) {
        Ok(images) => {
            for image in images {
                let state = if engine.is_ok() {
                    standin::is_standin(&docker, &image)
                } else {
                    Ok(None)
                };
                let (ok, detail) = match state {
                    Ok(Some(true)) => (true, "present (local stand-in)".to_owned()),
                    Ok(Some(false)) => (true, "present (upstream)".to_owned()),
                    Ok(None) => (false, "absent".to_owned()),
                    Err(err) => (false, format!("{err:#}")),
                };
                checks.push(Check {
                    name: format!("image {image}"),
                    ok,
                    detail,
                    fix: setup_fix.clone(),
                });
            }
        }
        Err(err) => checks.push(Check {
            name: "upstream images".into(),
            ok: false,
            detail: format!("{err:#}"),
            fix: None,
        }),
    }
    for (program, package) in [
        ("psql", "postgresql-client"),
        ("debootstrap", "debootstrap"),
        ("docker-registry", "docker-registry"),
    ] {
        let found = process::which(program).or_else(|| {
            let sbin = std::path::Path::new("/usr/sbin").join(program);
            sbin.exists().then_some(sbin)
        });
        checks.push(Check {
            name: program.into(),
            ok: found.is_some(),
            detail: found.map_or_else(|| "not found".into(), |p| p.display().to_string()),
            fix: Some(format!("apt-get install {package} (cargo xtask setup installs debootstrap and docker-registry)")),
        });
    }
    for (tool, state) in setup::venv::status() {
        checks.push(Check {
            name: tool.program.into(),
            ok: state.is_ok(),
            detail: match state {
                Ok(detail) => detail,
                Err(err) => format!("{err:#}"),
            },
            fix: Some(format!(
                "cargo xtask setup (pip install {}=={} into its virtual environment)",
                tool.package, tool.version
            )),
        });
    }
    checks
}
