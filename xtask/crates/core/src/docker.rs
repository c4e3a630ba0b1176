//! The one module that knows docker's command-line spelling. Every other task calls these
//! functions, so each command xtask runs is one a user could type, and only here.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context, Result, bail};
use xshell::Cmd;

mod containers;
pub mod credentials;
mod images;
pub mod registry;

use crate::{process, workspace::Workspace};

/// How long the engine has to answer before we call it down.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(2);

pub struct Docker<'a> {
    ws: &'a Workspace,
}

/// A `docker build` invocation.
pub struct Build<'a> {
    pub dockerfile: &'a Path,
    pub context: &'a Path,
    pub tags: Vec<String>,
    pub build_args: Vec<(String, String)>,
    pub labels: Vec<(String, String)>,
    pub no_cache: bool,
    /// Whose the image is: this run's, or every run's.
    pub owner: ImageOwner,
    /// Where the full build output is kept.
    pub log: PathBuf,
}

/// Which labels an image gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageOwner {
    /// Made for this run: the managed label plus this run's `--label`s, so the run's cleanup
    /// removes it.
    Run,
    /// Content-addressed and shared by every run (like the local database's): the managed label
    /// only, so a test's cleanup leaves it cached.
    Shared,
}

/// A container started with `docker run --detach`.
pub struct Run<'a> {
    pub image: &'a str,
    pub name: Option<&'a str>,
    pub publish: Vec<String>,
    /// Passed through the docker CLI's environment, never its arguments.
    pub env: Vec<(String, String)>,
    pub labels: Vec<(String, String)>,
    /// A user-defined network to join, and the name the container has on it.
    pub network: Option<(&'a str, &'a str)>,
    /// `volume:path` mounts.
    pub volumes: Vec<String>,
}

impl<'a> Docker<'a> {
    pub fn new(ws: &'a Workspace) -> Self {
        Docker { ws }
    }

    /// `docker` with the classic builder: the machines we run on have no buildx.
    fn docker(&self) -> Cmd<'a> {
        self.ws.sh.cmd("docker").env("DOCKER_BUILDKIT", "0")
    }

    /// The client version, or None when there is no docker CLI.
    pub fn client_version(&self) -> Option<String> {
        process::which("docker")?;
        self.docker()
            .args(["version", "--format", "{{.Client.Version}}"])
            .quiet()
            .ignore_stderr()
            .ignore_status()
            .read()
            .ok()
            .filter(|v| !v.is_empty())
    }

    /// Fails within about two seconds, with the fix, when the CLI or the engine is missing.
    pub fn require_engine(&self) -> Result<String> {
        if process::which("docker").is_none() {
            bail!("the docker CLI is not installed; run `cargo xtask setup` (or install docker)");
        }
        let cmd: Command = self
            .docker()
            .args(["version", "--format", "{{.Server.Version}}"])
            .into();
        let out = process::output_with_timeout(cmd, None, ENGINE_TIMEOUT)
            .context("the Docker engine did not answer; run `cargo xtask setup` to start it")?;
        let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !out.status.success() || version.is_empty() {
            let why = String::from_utf8_lossy(&out.stderr);
            bail!(
                "the Docker engine is not running ({}); run `cargo xtask setup` to start it",
                why.lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("no answer")
                    .trim()
            );
        }
        Ok(version)
    }

    /// Creates a bridge network unless one of that name exists. Docker allows several networks
    /// with one name (two creations at once both succeed), and then refuses to use the name as
    /// "ambiguous": duplicates are repaired here, keeping the one with the most containers.
    /// Callers hold the stack's lock, so they do not race each other into new duplicates.
    pub fn ensure_network(&self, name: &str, labels: &[(String, String)]) -> Result<()> {
        let listed = self
            .docker()
            .args([
                "network",
                "ls",
                "--no-trunc",
                "--format",
                "{{.ID}} {{.Name}}",
            ])
            .quiet()
            .read()
            .context("listing docker networks")?;
        let ids: Vec<&str> = listed
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter(|(_, n)| *n == name)
            .map(|(id, _)| id)
            .collect();
        if ids.is_empty() {
            return self.ensure_object("network", name, labels);
        }
        if ids.len() == 1 {
            return Ok(());
        }
        let mut attached: Vec<(&str, Vec<String>)> = Vec::new();
        for id in &ids {
            let containers = self
                .docker()
                .args([
                    "network",
                    "inspect",
                    "--format",
                    "{{range $k, $v := .Containers}}{{$k}} {{end}}",
                    id,
                ])
                .quiet()
                .read()
                .with_context(|| format!("inspecting network {id}"))?;
            attached.push((
                id,
                containers.split_whitespace().map(str::to_owned).collect(),
            ));
        }
        // Keep the most used one (the first listed among equals); disconnect and remove the rest.
        let keep = (0..attached.len())
            .max_by_key(|&i| (attached[i].1.len(), std::cmp::Reverse(i)))
            .expect("two or more");
        for (i, (id, containers)) in attached.iter().enumerate() {
            if i == keep {
                continue;
            }
            for container in containers {
                self.docker()
                    .args(["network", "disconnect", "--force", id, container])
                    .quiet()
                    .ignore_stdout()
                    .run()
                    .with_context(|| format!("disconnecting {container} from network {id}"))?;
            }
            self.docker()
                .args(["network", "rm", id])
                .quiet()
                .ignore_stdout()
                .run()
                .with_context(|| format!("removing the duplicate network {id} ({name})"))?;
        }
        crate::progress::note(format!(
            "repaired {} networks named {name}: kept {}, removed the others",
            ids.len(),
            &attached[keep].0[..12.min(attached[keep].0.len())]
        ));
        Ok(())
    }

    /// Creates a labelled named volume unless it exists.
    pub fn ensure_volume(&self, name: &str, labels: &[(String, String)]) -> Result<()> {
        self.ensure_object("volume", name, labels)
    }

    /// `docker <kind> create` with labels, unless `docker <kind> inspect` finds it.
    fn ensure_object(&self, kind: &str, name: &str, labels: &[(String, String)]) -> Result<()> {
        let exists = self
            .docker()
            .args([kind, "inspect", name])
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .ignore_status()
            .output()?;
        if exists.status.success() {
            return Ok(());
        }
        let mut args: Vec<String> = vec![kind.into(), "create".into()];
        for (key, value) in labels {
            args.extend(["--label".into(), format!("{key}={value}")]);
        }
        args.extend(self.ws.label_args());
        args.push(name.to_owned());
        self.docker()
            .args(&args)
            .quiet()
            .ignore_stdout()
            .run()
            .with_context(|| format!("creating {kind} {name}"))
    }

    /// Removes the networks and volumes that carry `label` (after their containers are gone).
    pub fn remove_labelled_networks_and_volumes(&self, label: &str) -> Result<()> {
        let filter = format!("label={label}");
        for kind in ["network", "volume"] {
            let ids = self
                .docker()
                .args([kind, "ls", "--quiet", "--filter", &filter])
                .quiet()
                .read()?;
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                self.docker()
                    .args([kind, "rm"])
                    .args(&ids)
                    .quiet()
                    .ignore_stdout()
                    .run()?;
            }
        }
        Ok(())
    }

    /// Removes every container that carries `label` (KEY=VALUE).
    pub fn remove_labelled_containers(&self, label: &str) -> Result<()> {
        let filter = format!("label={label}");
        let containers = self
            .docker()
            .args(["ps", "--all", "--quiet", "--filter", &filter])
            .quiet()
            .read()?;
        let containers: Vec<&str> = containers.split_whitespace().collect();
        if !containers.is_empty() {
            self.docker()
                .args(["rm", "--force", "--volumes"])
                .args(&containers)
                .quiet()
                .ignore_stdout()
                .run()?;
        }
        Ok(())
    }

    /// For every container, network and volume that carries the label `keys[0]`, the values of
    /// its labels `keys` (empty when absent): what the sweep of dead runs reads (owner.rs).
    pub fn labelled_owners(&self, keys: &[&str]) -> Result<Vec<Vec<String>>> {
        let filter = format!("label={}", keys[0]);
        let format = keys
            .iter()
            .map(|k| format!("{{{{.Label \"{k}\"}}}}"))
            .collect::<Vec<_>>()
            .join("\t");
        let mut owners = Vec::new();
        for kind in [&["ps", "--all"][..], &["network", "ls"], &["volume", "ls"]] {
            let text = self
                .docker()
                .args(kind)
                .args(["--filter", &filter, "--format", &format])
                .quiet()
                .read()?;
            owners.extend(
                text.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| l.split('\t').map(|v| v.trim().to_owned()).collect()),
            );
        }
        Ok(owners)
    }

    /// `docker <kind> inspect --format <format> <id>` (kind: container, image).
    pub fn inspect(&self, kind: &str, id: &str, format: &str) -> Result<String> {
        self.docker()
            .args([kind, "inspect", "--format", format, id])
            .quiet()
            .read()
            .with_context(|| format!("inspecting {kind} {id}"))
    }

    /// Removes every container and image that carries `label` (KEY=VALUE), ignoring absences.
    pub fn remove_labelled(&self, label: &str) -> Result<()> {
        self.remove_labelled_containers(label)?;
        let filter = format!("label={label}");
        let images = self
            .docker()
            .args(["image", "ls", "--all", "--quiet", "--filter", &filter])
            .quiet()
            .read()?;
        let mut images: Vec<&str> = images.split_whitespace().collect();
        images.sort_unstable();
        images.dedup();
        if !images.is_empty() {
            // Some may already be gone as parents of others; what remains must go.
            self.docker()
                .args(["image", "rm", "--force"])
                .args(&images)
                .quiet()
                .ignore_stdout()
                .ignore_stderr()
                .ignore_status()
                .run()?;
        }
        Ok(())
    }
}

/// What previews (preview.rs) ask the engine: listings by label in one call per kind, a
/// container committed as a template image, and memory use without a call per container.
impl Docker<'_> {
    /// `docker network ls --filter label=<label> --format <format>` (one line per network).
    pub fn list_networks(&self, label: &str, format: &str) -> Result<String> {
        let filter = format!("label={label}");
        self.docker()
            .args(["network", "ls", "--filter", &filter, "--format", format])
            .quiet()
            .read()
            .context("listing networks")
    }

    /// The labels of a network, or None when there is no network of that name.
    pub fn network_labels(&self, name: &str) -> Result<Option<BTreeMap<String, String>>> {
        let out = self
            .docker()
            .args(["network", "inspect", "--format", "{{json .Labels}}", name])
            .quiet()
            .ignore_status()
            .output()?;
        if !out.status.success() {
            return Ok(None);
        }
        let labels: Option<BTreeMap<String, String>> =
            serde_json::from_slice(&out.stdout).context("parsing docker's network label output")?;
        Ok(Some(labels.unwrap_or_default()))
    }

    /// `docker volume rm --force`: absent is fine.
    pub fn remove_volume(&self, name: &str) -> Result<()> {
        self.docker()
            .args(["volume", "rm", "--force", name])
            .quiet()
            .ignore_stdout()
            .run()
            .with_context(|| format!("removing volume {name}"))
    }
}
