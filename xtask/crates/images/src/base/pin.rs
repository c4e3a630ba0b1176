//! The base's pin and status: `base pin` writes (or with `--check` verifies) the reference
//! `Dockerfile` builds FROM, since Render builds from that file alone, and `base status` reports
//! the tag, whether it is local and in the registry, and whether the pin is current.

use super::*;

/// The Dockerfile line that `base pin` rewrites.
pub(super) const PIN_PREFIX: &str = "ARG BASE_IMAGE=";

/// Where the Dockerfile's pin stands relative to the current inputs.
#[derive(Debug)]
pub(super) enum Pin {
    Current,
    Stale { pinned: String },
    Missing,
}

pub(super) fn pinned_reference(ws: &Workspace) -> Result<Option<String>> {
    let path = ws.path(workspace::APP_DOCKERFILE);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(PIN_PREFIX))
        .map(|v| v.trim().to_owned()))
}

/// The registry of a pinned reference when it is a loopback one (127.0.0.1, localhost, ::1).
pub(super) fn local_registry_of(pinned: &str) -> Option<&str> {
    let registry = pinned.split('/').next()?;
    // Without a registry part (`name:tag`), the image comes from Docker Hub.
    if !pinned.contains('/') {
        return None;
    }
    workspace::LOCAL_REGISTRY_HOSTS
        .contains(&workspace::registry_host(registry))
        .then_some(registry)
}

/// The tag part of a pinned `repo:tag@sha256:…` reference.
pub(super) fn pinned_tag(pinned: &str) -> Option<&str> {
    let without_digest = pinned.split('@').next()?;
    let last = without_digest.rsplit('/').next()?;
    last.split_once(':').map(|(_, tag)| tag)
}

pub(super) fn pin_state(ws: &Workspace, inputs: &BaseInputs) -> Result<Pin> {
    Ok(match pinned_reference(ws)? {
        None => Pin::Missing,
        Some(pinned) if pinned_tag(&pinned) == Some(inputs.tag()) => Pin::Current,
        Some(pinned) => Pin::Stale { pinned },
    })
}

pub(super) fn status(ws: &Workspace, json_out: bool) -> Result<()> {
    let inputs = compute(ws)?;
    let reference = reference(ws, &inputs);
    let docker = Docker::new(ws);
    let (local, remote) = look_up(ws, &docker, &inputs);
    let local = match local {
        Ok(found) => Some(found),
        Err(err) => {
            progress::note(format!("local: unknown ({err:#})"));
            None
        }
    };
    let pin = pin_state(ws, &inputs)?;
    if json_out {
        let registry = match &remote {
            Ok(Lookup::Present { digest }) => RegistryJson {
                digest: Some(digest.clone()),
                error: None,
                state: "present",
            },
            Ok(Lookup::Absent) => RegistryJson {
                digest: None,
                error: None,
                state: "absent",
            },
            Err(err) => RegistryJson {
                digest: None,
                error: Some(format!("{err:#}")),
                state: "unreachable",
            },
        };
        let pin = match &pin {
            Pin::Current => PinJson {
                pinned: None,
                state: "current",
            },
            Pin::Stale { pinned } => PinJson {
                pinned: Some(pinned),
                state: "stale",
            },
            Pin::Missing => PinJson {
                pinned: None,
                state: "missing",
            },
        };
        let value = StatusJson {
            hash: &inputs.hash,
            local,
            pin,
            reference: &reference,
            registry,
        };
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    println!("reference  {reference}");
    println!("hash       {}", inputs.hash);
    println!(
        "local      {}",
        match local {
            Some(true) => "present",
            Some(false) => "absent (cargo xtask base build)",
            None => "unknown: the Docker engine is not running (cargo xtask setup)",
        }
    );
    match &remote {
        Ok(Lookup::Present { digest }) => println!("registry   present {digest}"),
        Ok(Lookup::Absent) => println!("registry   absent (cargo xtask base build --push)"),
        Err(err) => println!("registry   unreachable: {err:#}"),
    }
    match &pin {
        Pin::Current => println!("pin        current"),
        Pin::Stale { pinned } => {
            println!("pin        stale: Dockerfile pins {pinned} (cargo xtask base pin)");
        }
        Pin::Missing => println!("pin        missing: no `{PIN_PREFIX}` line in Dockerfile"),
    }
    Ok(())
}

impl flags::BasePin {
    pub(super) fn run(self, ws: &Workspace) -> Result<()> {
        let inputs = compute(ws)?;
        let reference = reference(ws, &inputs);
        if self.check {
            // A pin of this machine's registry is not deployable, current or not: a warning,
            // not a failure, because CI and local work use the local registry.
            if let Some(pinned) = pinned_reference(ws)?
                && let Some(host) = local_registry_of(&pinned)
            {
                eprintln!(
                    "warning: the pin names the registry {host}, which only this machine can reach: Render cannot pull that base. \
                     Before a deploy, set DOCKER_REGISTRY_SERVER to a registry Render can reach, then run \
                     `cargo xtask base build --push && cargo xtask base pin`."
                );
            }
            return match pin_state(ws, &inputs)? {
                Pin::Current => {
                    println!("pin current: {}", inputs.tag());
                    Ok(())
                }
                Pin::Stale { pinned } => bail!(
                    "Dockerfile pins {pinned}, but the base inputs now hash to {}; run `cargo xtask base build --push && cargo xtask base pin`",
                    inputs.tag()
                ),
                Pin::Missing => bail!(
                    "Dockerfile has no `{PIN_PREFIX}` line; add one and run `cargo xtask base pin`"
                ),
            };
        }
        let docker = Docker::new(ws);
        let digest = match registry::lookup(
            &docker,
            &ws.config.registry,
            &ws.config.base_image,
            inputs.tag(),
        )? {
            Lookup::Present { digest } => digest,
            Lookup::Absent => bail!(
                "{reference} is not in the registry, and Render can only build FROM a pushed base; run `cargo xtask base build --push` first"
            ),
        };
        let pinned = format!("{reference}@{digest}");
        let path = ws.path(workspace::APP_DOCKERFILE);
        let text = std::fs::read_to_string(&path)?;
        let updated = rewrite_pin(&text, &pinned)
            .with_context(|| format!("{}: no `{PIN_PREFIX}` line to rewrite", path.display()))?;
        if updated != text {
            std::fs::write(&path, updated)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        println!("{pinned}");
        Ok(())
    }
}

pub(super) fn rewrite_pin(dockerfile: &str, pinned: &str) -> Option<String> {
    let mut found = false;
    let lines: Vec<String> = dockerfile
        .split('\n')
        .map(|line| {
            if line.starts_with(PIN_PREFIX) && !found {
                found = true;
                format!("{PIN_PREFIX}{pinned}")
            } else {
                line.to_owned()
            }
        })
        .collect();
    found.then(|| lines.join("\n"))
}

#[derive(Serialize)]
struct StatusJson<'a> {
    hash: &'a str,
    /// Null when the Docker engine is not running.
    local: Option<bool>,
    pin: PinJson<'a>,
    reference: &'a str,
    registry: RegistryJson,
}

/// `state` is present, absent or unreachable; `digest` only when present, `error` only when
/// unreachable.
#[derive(Serialize)]
struct RegistryJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    state: &'static str,
}

/// `state` is current, stale or missing; `pinned` only when stale.
#[derive(Serialize)]
struct PinJson<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pinned: Option<&'a str>,
    state: &'static str,
}
