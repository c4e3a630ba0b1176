//! Docker's commands on containers: run, state, published ports, logs, stop, start, signal,
//! exec, list and remove, and their memory use. Part of the one module that spells docker's
//! command line (docker.rs).

use std::{collections::BTreeMap, process::Command, time::Duration};

use anyhow::{Context, Result};

use super::{Docker, Run};
use crate::process;

impl Docker<'_> {
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

    /// The containers (running or not) created from `image`, one id a line.
    pub fn list_containers_of_image(&self, image: &str) -> Result<String> {
        let filter = format!("ancestor={image}");
        self.docker()
            .args(["ps", "--all", "--quiet", "--filter", &filter])
            .quiet()
            .read()
            .context("listing containers")
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
