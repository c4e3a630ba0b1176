//! The one module that knows docker's command-line spelling. Every other task calls these
//! functions, so each command xtask runs is one a user could type, and only here.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context, Result, bail};
use xshell::{Cmd, cmd};

pub mod credentials;
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

    pub fn image_exists(&self, reference: &str) -> Result<bool> {
        let out = self
            .docker()
            .args(["image", "inspect", "--format", "{{.Id}}", reference])
            .quiet()
            .ignore_status()
            .output()?;
        if out.status.success() {
            return Ok(true);
        }
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("No such image") || err.contains("No such object") {
            return Ok(false);
        }
        // Anything else (engine down, permission denied) is not an answer about the image.
        bail!(
            "cannot ask the Docker engine about {reference}: {}; run `cargo xtask doctor`",
            err.trim()
        )
    }

    /// The image's labels; an error when the image is not present locally.
    pub fn image_labels(&self, reference: &str) -> Result<BTreeMap<String, String>> {
        let json = self
            .docker()
            .args([
                "image",
                "inspect",
                "--format",
                "{{json .Config.Labels}}",
                reference,
            ])
            .quiet()
            .read()
            .with_context(|| format!("image {reference} is not present locally"))?;
        let labels: Option<BTreeMap<String, String>> =
            serde_json::from_str(&json).context("parsing docker's label output")?;
        Ok(labels.unwrap_or_default())
    }

    pub fn build(&self, build: &Build<'_>) -> Result<()> {
        let mut args: Vec<String> = vec![
            "build".into(),
            "--file".into(),
            build.dockerfile.display().to_string(),
        ];
        if build.no_cache {
            args.push("--no-cache".into());
        }
        for tag in &build.tags {
            args.extend(["--tag".into(), tag.clone()]);
        }
        for (key, value) in &build.build_args {
            args.extend(["--build-arg".into(), format!("{key}={value}")]);
        }
        for (key, value) in &build.labels {
            args.extend(["--label".into(), format!("{key}={value}")]);
        }
        if build.owner == ImageOwner::Shared {
            args.extend([
                "--label".into(),
                format!("{}=true", crate::workspace::MANAGED_LABEL),
            ]);
        } else {
            args.extend(self.ws.label_args());
        }
        args.push(build.context.display().to_string());
        let cmd = self.docker().args(&args);
        eprintln!("    $ {cmd}");
        process::stream_to_log(cmd.into(), &build.log)
    }

    /// Gives `source` the further name `target`.
    pub fn tag(&self, source: &str, target: &str) -> Result<()> {
        self.docker()
            .args(["tag", source, target])
            .quiet()
            .run()
            .with_context(|| format!("tagging {source} as {target}"))
    }

    pub fn remove_image(&self, reference: &str) -> Result<()> {
        self.docker()
            .args(["image", "rm", "--force", reference])
            .quiet()
            .ignore_stdout()
            .run()
            .with_context(|| format!("removing {reference}"))
    }

    /// Tries a pull; Ok(false) when the registry does not have it or cannot be reached.
    pub fn try_pull(&self, reference: &str) -> Result<bool> {
        let cmd: Command = self.docker().args(["pull", "--quiet", reference]).into();
        let out = process::output_with_timeout(cmd, None, Duration::from_mins(10))?;
        Ok(out.status.success())
    }

    pub fn pull(&self, reference: &str) -> Result<()> {
        // stdout is for results: docker's echo of the reference is not one.
        self.docker()
            .args(["pull", "--quiet", reference])
            .ignore_stdout()
            .run()
            .with_context(|| format!("pulling {reference}"))
    }

    /// Pushes with the given client config dir (which holds the login), and returns the digest
    /// the registry assigned.
    pub fn push(&self, reference: &str, config_dir: Option<&Path>) -> Result<String> {
        let mut cmd = self.docker();
        if let Some(dir) = config_dir {
            cmd = cmd.arg("--config").arg(dir);
        }
        let out = cmd
            .args(["push", reference])
            .quiet()
            .ignore_status()
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            bail!("pushing {reference} failed: {}", err.trim());
        }
        text.split_whitespace()
            .find(|word| word.starts_with("sha256:"))
            .map(str::to_owned)
            .with_context(|| format!("docker push {reference} printed no digest"))
    }

    /// `docker login --password-stdin` into a private client config dir: the password travels
    /// through stdin only, never argv, and is not left in the user's ~/.docker.
    pub fn login(
        &self,
        server: &str,
        username: &str,
        password: &str,
        config_dir: &Path,
    ) -> Result<()> {
        let sh = &self.ws.sh;
        let cmd: Command = cmd!(
            sh,
            "docker --config {config_dir} login --username {username} --password-stdin {server}"
        )
        .into();
        let out =
            process::output_with_timeout(cmd, Some(password.as_bytes()), Duration::from_secs(30))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr).replace(password, "***");
            bail!(
                "registry {server} refused the login of user {username}: {}; check DOCKER_REGISTRY_USERNAME and DOCKER_REGISTRY_PASSWORD",
                err.trim()
            );
        }
        Ok(())
    }

    /// `docker import` of a root filesystem tarball, with Dockerfile-style `changes`.
    pub fn import(&self, tarball: &Path, reference: &str, changes: &[String]) -> Result<()> {
        let mut args: Vec<String> = vec!["import".into()];
        for change in changes {
            args.extend(["--change".into(), change.clone()]);
        }
        args.push(tarball.display().to_string());
        args.push(reference.to_owned());
        self.docker()
            .args(&args)
            .quiet()
            .ignore_stdout()
            .run()
            .with_context(|| format!("importing {reference}"))
    }

    pub fn run_detached(&self, run: &Run<'_>) -> Result<String> {
        let mut args: Vec<String> = vec!["run".into(), "--detach".into()];
        if let Some(name) = run.name {
            args.extend(["--name".into(), name.to_owned()]);
        }
        if let Some((network, alias)) = run.network {
            args.extend([
                "--network".into(),
                network.to_owned(),
                "--network-alias".into(),
                alias.to_owned(),
            ]);
        }
        for volume in &run.volumes {
            args.extend(["--volume".into(), volume.clone()]);
        }
        for publish in &run.publish {
            args.extend(["--publish".into(), publish.clone()]);
        }
        // `--env KEY` without a value: docker takes the value from its own environment, so
        // values (secrets among them) never appear on a command line.
        for (key, _) in &run.env {
            args.extend(["--env".into(), key.clone()]);
        }
        for (key, value) in &run.labels {
            args.extend(["--label".into(), format!("{key}={value}")]);
        }
        args.extend(self.ws.label_args());
        args.push(run.image.to_owned());
        let mut cmd = self.docker().args(&args);
        for (key, value) in &run.env {
            cmd = cmd.env(key, value);
        }
        let id = cmd
            .read()
            .with_context(|| format!("starting a container of {}", run.image))?;
        Ok(id.trim().to_owned())
    }

    /// The container's health status ("starting", "healthy", "unhealthy") and whether it runs.
    pub fn container_state(&self, id: &str) -> Result<(String, bool)> {
        let text = self
            .docker()
            .args(["container", "inspect", "--format", "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.State.Running}}", id])
            .quiet()
            .read()?;
        let mut words = text.split_whitespace();
        let health = words.next().unwrap_or("none").to_owned();
        Ok((health, words.next() == Some("true")))
    }

    /// The host address a container port is published on, e.g. 127.0.0.1:49153.
    pub fn published_address(&self, id: &str, container_port: &str) -> Result<String> {
        let text = self
            .docker()
            .args(["port", id, container_port])
            .quiet()
            .read()?;
        text.lines()
            .next()
            .map(str::to_owned)
            .with_context(|| format!("container port {container_port} is not published"))
    }

    pub fn logs(&self, id: &str) -> Result<String> {
        let out = self
            .docker()
            .args(["logs", id])
            .quiet()
            .ignore_status()
            .output()?;
        Ok(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }

    /// The image id a container runs and whether it is running; None when there is no such
    /// container.
    pub fn container_image(&self, name: &str) -> Result<Option<(String, bool)>> {
        let out = self
            .docker()
            .args([
                "container",
                "inspect",
                "--format",
                "{{.Image}} {{.State.Running}}",
                name,
            ])
            .quiet()
            .ignore_status()
            .output()?;
        if !out.status.success() {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut words = text.split_whitespace();
        Ok(Some((
            words.next().unwrap_or_default().to_owned(),
            words.next() == Some("true"),
        )))
    }

    /// The networks a container is attached to.
    pub fn container_networks(&self, name: &str) -> Result<Vec<String>> {
        let text = self
            .docker()
            .args([
                "container",
                "inspect",
                "--format",
                "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
                name,
            ])
            .quiet()
            .read()?;
        Ok(text.split_whitespace().map(str::to_owned).collect())
    }

    /// The id of a local image.
    pub fn image_id(&self, reference: &str) -> Result<String> {
        self.docker()
            .args(["image", "inspect", "--format", "{{.Id}}", reference])
            .quiet()
            .read()
            .with_context(|| format!("image {reference} is not present locally"))
    }

    /// The uncompressed size of a local image, in bytes, as `docker image ls` shows it.
    pub fn image_size(&self, reference: &str) -> Result<u64> {
        let text = self
            .docker()
            .args(["image", "inspect", "--format", "{{.Size}}", reference])
            .quiet()
            .read()
            .with_context(|| format!("image {reference} is not present locally"))?;
        text.trim()
            .parse()
            .with_context(|| format!("docker printed no size for {reference}: {text}"))
    }

    /// `docker stop` with a grace period: the container gets SIGTERM (its STOPSIGNAL), then
    /// SIGKILL when `grace` passes. Returns its exit code.
    pub fn stop(&self, name: &str, grace: Duration) -> Result<i64> {
        let seconds = grace.as_secs().to_string();
        self.docker()
            .args(["stop", "--time", &seconds, name])
            .quiet()
            .ignore_stdout()
            .run()
            .with_context(|| format!("stopping {name}"))?;
        let code = self
            .docker()
            .args([
                "container",
                "inspect",
                "--format",
                "{{.State.ExitCode}}",
                name,
            ])
            .quiet()
            .read()?;
        code.trim()
            .parse()
            .with_context(|| format!("docker printed no exit code for {name}: {code}"))
    }

    pub fn remove_container(&self, name: &str) -> Result<()> {
        self.docker()
            .args(["rm", "--force", name])
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .ignore_status()
            .run()?;
        Ok(())
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

    /// The commands that made each layer of an image (`docker history --no-trunc`).
    pub fn history(&self, reference: &str) -> Result<String> {
        self.docker()
            .args([
                "history",
                "--no-trunc",
                "--format",
                "{{.CreatedBy}}",
                reference,
            ])
            .quiet()
            .read()
            .with_context(|| format!("reading the history of {reference}"))
    }

    /// `docker stop` (SIGTERM, then SIGKILL after `grace`).
    pub fn stop_container(&self, id: &str, grace: Duration) -> Result<()> {
        let secs = grace.as_secs().to_string();
        self.docker()
            .args(["stop", "--time", &secs, id])
            .quiet()
            .ignore_stdout()
            .run()
            .with_context(|| format!("stopping {id}"))
    }

    pub fn start_container(&self, id: &str) -> Result<()> {
        self.docker()
            .args(["start", id])
            .quiet()
            .ignore_stdout()
            .run()
            .with_context(|| format!("starting {id}"))
    }

    /// Sends `signal` (e.g. TERM) to the container's main process.
    pub fn signal_container(&self, id: &str, signal: &str) -> Result<()> {
        self.docker()
            .args(["kill", "--signal", signal, id])
            .quiet()
            .ignore_stdout()
            .run()
            .with_context(|| format!("sending SIG{signal} to {id}"))
    }

    /// `docker exec --interactive <container> <args…>` as a process to spawn (stdin open).
    pub fn exec_command(&self, container: &str, args: &[&str]) -> Command {
        let mut cmd = process::command("docker");
        cmd.args(["exec", "--interactive", container]).args(args);
        cmd
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
    /// `docker ps --all --filter label=<label> --format <format>` (one line per container).
    pub fn list_containers(&self, label: &str, format: &str) -> Result<String> {
        let filter = format!("label={label}");
        self.docker()
            .args([
                "ps",
                "--all",
                "--no-trunc",
                "--filter",
                &filter,
                "--format",
                format,
            ])
            .quiet()
            .read()
            .context("listing containers")
    }

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

    /// `docker image ls --filter reference=<reference> --format <format>`.
    pub fn list_images(&self, reference: &str, format: &str) -> Result<String> {
        let filter = format!("reference={reference}");
        self.docker()
            .args(["image", "ls", "--filter", &filter, "--format", format])
            .quiet()
            .read()
            .context("listing images")
    }

    /// The containers (running or not) created from `image`, one id a line.
    pub fn list_containers_of_image(&self, image: &str) -> Result<String> {
        let filter = format!("ancestor={image}");
        self.docker()
            .args(["ps", "--all", "--quiet", "--filter", &filter])
            .quiet()
            .read()
            .context("listing containers")
    }

    /// `docker image rm` without force: false when the engine keeps it (a container uses it).
    pub fn remove_image_if_unused(&self, reference: &str) -> Result<bool> {
        let out = self
            .docker()
            .args(["image", "rm", reference])
            .quiet()
            .ignore_status()
            .output()?;
        Ok(out.status.success())
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

    /// `docker commit --change … <container> <reference>`: the container's filesystem as an
    /// image (a stopped database with its data directory, for example).
    pub fn commit(&self, container: &str, reference: &str, changes: &[String]) -> Result<()> {
        let mut args: Vec<String> = vec!["commit".into()];
        for change in changes {
            args.extend(["--change".into(), change.clone()]);
        }
        args.extend([container.to_owned(), reference.to_owned()]);
        self.docker()
            .args(&args)
            .quiet()
            .ignore_stdout()
            .run()
            .with_context(|| format!("committing {container} as {reference}"))
    }

    /// The memory each running container uses, in bytes, as `docker stats` counts it (usage
    /// minus inactive file cache), keyed by full container id. Read from the cgroup files when
    /// they are readable (no process at all), else one `docker stats --no-stream` for all.
    pub fn memory_use(&self, ids: &[String]) -> Result<BTreeMap<String, u64>> {
        let mut found = BTreeMap::new();
        let mut missing = Vec::new();
        for id in ids {
            match cgroup_memory(id) {
                Some(bytes) => {
                    found.insert(id.clone(), bytes);
                }
                None => missing.push(id.clone()),
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let text = self
            .docker()
            .args([
                "stats",
                "--no-stream",
                "--no-trunc",
                "--format",
                "{{.ID}}\t{{.MemUsage}}",
            ])
            .args(&missing)
            .quiet()
            .ignore_stderr()
            .ignore_status()
            .read()
            .unwrap_or_default();
        for line in text.lines() {
            let Some((id, usage)) = line.split_once('\t') else {
                continue;
            };
            let used = usage.split('/').next().unwrap_or_default().trim();
            if let Some(bytes) = parse_size(used) {
                found.insert(id.trim().to_owned(), bytes);
            }
        }
        Ok(found)
    }
}

/// A container's memory use from its cgroup (v1 under the cgroupfs driver, or v2 under either
/// driver), the way `docker stats` computes it.
fn cgroup_memory(id: &str) -> Option<u64> {
    let read = |path: String| std::fs::read_to_string(path).ok();
    let stat_value = |stat: &str, key: &str| {
        stat.lines().find_map(|l| {
            l.strip_prefix(key)?
                .strip_prefix(' ')?
                .trim()
                .parse::<u64>()
                .ok()
        })
    };
    let v1 = format!("/sys/fs/cgroup/memory/docker/{id}");
    if let Some(usage) = read(format!("{v1}/memory.usage_in_bytes")) {
        let usage: u64 = usage.trim().parse().ok()?;
        let stat = read(format!("{v1}/memory.stat")).unwrap_or_default();
        let inactive = stat_value(&stat, "total_inactive_file").unwrap_or(0);
        return Some(usage.saturating_sub(inactive));
    }
    for v2 in [
        format!("/sys/fs/cgroup/system.slice/docker-{id}.scope"),
        format!("/sys/fs/cgroup/docker/{id}"),
    ] {
        if let Some(usage) = read(format!("{v2}/memory.current")) {
            let usage: u64 = usage.trim().parse().ok()?;
            let stat = read(format!("{v2}/memory.stat")).unwrap_or_default();
            let inactive = stat_value(&stat, "inactive_file").unwrap_or(0);
            return Some(usage.saturating_sub(inactive));
        }
    }
    None
}

/// `12.5MiB`, `1.2GiB`, `512KiB`, `800B` (docker's human sizes) in bytes.
fn parse_size(text: &str) -> Option<u64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.trim().parse().ok()?;
    let factor = match unit {
        "B" => 1.0,
        "KiB" | "kB" | "KB" => 1024.0,
        "MiB" | "MB" => 1024.0 * 1024.0,
        "GiB" | "GB" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    Some((number * factor) as u64)
}

impl Docker<'_> {
    /// Asks a remote registry for a manifest through the CLI (TLS, stored credentials).
    pub fn manifest_digest(&self, reference: &str) -> Result<registry::Lookup> {
        let cmd: Command = self
            .docker()
            .args(["manifest", "inspect", "--verbose", reference])
            .into();
        let out = process::output_with_timeout(cmd, None, Duration::from_secs(10))?;
        if out.status.success() {
            let value: serde_json::Value =
                serde_json::from_slice(&out.stdout).context("parsing `docker manifest inspect`")?;
            let descriptor = if value.is_array() {
                &value[0]["Descriptor"]
            } else {
                &value["Descriptor"]
            };
            let digest = descriptor["digest"]
                .as_str()
                .context("`docker manifest inspect` printed no digest")?;
            return Ok(registry::Lookup::Present {
                digest: digest.to_owned(),
            });
        }
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("no such manifest") || err.contains("manifest unknown") {
            return Ok(registry::Lookup::Absent);
        }
        bail!("registry lookup of {reference} failed: {}", err.trim())
    }
}
