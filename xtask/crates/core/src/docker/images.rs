//! Docker's commands on images: build, tag, pull, push (and the login it needs), import, commit,
//! inspect, list and remove, and a registry's manifest through the CLI. Part of the one module
//! that spells docker's command line (docker.rs).

use std::{collections::BTreeMap, path::Path, process::Command, time::Duration};

use anyhow::{Context, Result, bail};
use xshell::cmd;

use super::{Build, Docker, ImageOwner, registry};
use crate::process;

impl Docker<'_> {
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

    /// `docker image ls --filter reference=<reference> --format <format>`.
    pub fn list_images(&self, reference: &str, format: &str) -> Result<String> {
        let filter = format!("reference={reference}");
        self.docker()
            .args(["image", "ls", "--filter", &filter, "--format", format])
            .quiet()
            .read()
            .context("listing images")
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
