//! `cargo lab bench preview`: local previews in one run, on a scratch clone of the workspace
//! with five branches. The first preview from nothing (its app image and database template
//! built: the clone's sources and seed carry a fresh marker), then a second branch whose sources,
//! migrations and seed equal the first's (what most branches are: both images shared), a branch
//! with a seed of its own (its template built), the memory each running preview uses (database
//! and API), and how long `preview list` takes with five previews running.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};

use super::{Figure, fmt_secs, median, report, secs};
use xtask_core::{docker::Docker, process, progress, workspace::Workspace};

use crate::flags;

const TITLE: &str =
    "Plenary session: Council and Commission statements on the climate target for 2040";

impl flags::BenchPreview {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        let docker = Docker::new(ws);
        docker.require_engine()?;
        let exe = super::xtask_binary()?;
        let nonce = format!("{}-{}", std::process::id(), xtask_core::time::now());
        let label = format!("org.openeu.bench=preview-{nonce}");
        let scratch = ws.scratch("bench-preview")?.join(&nonce);
        let _cleanup = super::Cleanup::new(&docker, label.clone(), scratch.clone());
        let mut templates = Vec::new();
        let result = (|| -> Result<Vec<Figure>> {
            let step = progress::step("a scratch clone with five branches");
            let clone = scratch.join("repo");
            let git = |args: &[&str]| -> Result<()> {
                let mut cmd = process::command("git");
                cmd.args(["-c", "user.name=bench", "-c", "user.email=bench@localhost"])
                    .args(args)
                    .current_dir(&clone);
                let out = process::output_with_timeout(cmd, None, Duration::from_mins(2))?;
                if !out.status.success() {
                    bail!(
                        "git {args:?}: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                }
                Ok(())
            };
            std::fs::create_dir_all(&clone)?;
            git(&[
                "clone",
                "--quiet",
                "--no-hardlinks",
                &ws.root.display().to_string(),
                ".",
            ])?;
            git(&["checkout", "--quiet", "-B", "main"])?;
            let edit = |path: &str, f: &dyn Fn(String) -> String| -> Result<()> {
                let path = clone.join(path);
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                std::fs::write(&path, f(text))?;
                Ok(())
            };
            let stack = format!("bench-preview-{}", std::process::id());
            edit("Cargo.toml", &|s| {
                s.replace(
                    "[workspace.metadata.xtask]\n",
                    &format!("[workspace.metadata.xtask]\nstack = \"{stack}\"\n"),
                )
            })?;
            // From nothing: sources and seed no image or template was made from.
            edit("crates/openeu-api/src/main.rs", &|s| {
                format!("{s}// bench preview {nonce}\n")
            })?;
            edit("supabase/seed/meetings.toml", &|s| {
                s.replacen(TITLE, &format!("Bench {nonce}"), 1)
            })?;
            git(&["commit", "--quiet", "-am", "bench base"])?;
            for (i, branch) in ["p1", "p2", "p3", "p4", "p5"].iter().enumerate() {
                git(&["checkout", "--quiet", "-b", branch, "main"])?;
                if *branch == "p3" {
                    edit("supabase/seed/meetings.toml", &|s| {
                        s.replacen(&format!("Bench {nonce}"), &format!("Bench p3 {nonce}"), 1)
                    })?;
                } else {
                    edit("README.md", &|s| format!("{s}\n<!-- {branch} {i} -->\n"))?;
                }
                git(&["commit", "--quiet", "-am", branch])?;
            }
            git(&["checkout", "--quiet", "main"])?;
            step.done();

            let xtask = |args: &[&str]| {
                let mut cmd = process::command(&exe);
                cmd.arg("--workspace")
                    .arg(&clone)
                    .arg("--label")
                    .arg(&label)
                    .args(args)
                    .stdin(Stdio::null());
                cmd
            };
            let mut up = |branch: &str| -> Result<Duration> {
                let step = progress::step(format!("preview up --branch {branch}"));
                let started = Instant::now();
                let out = xtask(&["preview", "up", "--json", "--branch", branch]).output()?;
                let elapsed = started.elapsed();
                if !out.status.success() {
                    bail!(
                        "preview up --branch {branch} failed:\n{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                let value: serde_json::Value = serde_json::from_slice(&out.stdout)?;
                if let Some(template) = value["database_template"].as_str() {
                    templates.push(template.to_owned());
                }
                step.done_with(&fmt_secs(elapsed));
                Ok(elapsed)
            };
            let first = up("p1")?;
            let second = up("p2")?;
            let own_seed = up("p3")?;
            up("p4")?;
            up("p5")?;

            let step = progress::step("preview list with five previews, five times");
            let mut lists = Vec::new();
            let mut listed = String::new();
            for _ in 0..5 {
                let started = Instant::now();
                let out = xtask(&["preview", "list", "--json"]).output()?;
                lists.push(started.elapsed());
                if !out.status.success() {
                    bail!(
                        "preview list failed:\n{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
                listed = String::from_utf8_lossy(&out.stdout).into_owned();
            }
            let list = median(&mut lists);
            step.done();
            let listed: Vec<serde_json::Value> = serde_json::from_str(&listed)?;
            let memory: Vec<u64> = listed
                .iter()
                .filter_map(|p| p["memory_bytes"].as_u64())
                .collect();
            if memory.len() != 5 {
                bail!(
                    "preview list showed {} previews with a memory figure, not 5",
                    memory.len()
                );
            }
            let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
            let max = memory.iter().copied().max().unwrap_or(0);
            let mean = memory.iter().sum::<u64>() / memory.len() as u64;
            Ok(vec![
                Figure {
                    name: "preview up, second branch (image, template shared)".into(),
                    ours: fmt_secs(second),
                    reference: format!("first from nothing {}", fmt_secs(first)),
                    ratio: Some(secs(first) / secs(second)),
                    ratio_is: "first / second",
                    goal: "second ≤ 5 s",
                    met: second <= Duration::from_secs(5),
                },
                Figure {
                    name: "preview up, branch with its own seed".into(),
                    ours: fmt_secs(own_seed),
                    reference: format!("shared {}", fmt_secs(second)),
                    ratio: Some(secs(own_seed) / secs(second)),
                    ratio_is: "own seed / shared",
                    goal: "(the template's cost)",
                    met: true,
                },
                Figure {
                    name: "memory per running preview (db + api), max of 5".into(),
                    ours: format!("{:.1} MiB", mib(max)),
                    reference: format!("mean {:.1} MiB", mib(mean)),
                    ratio: None,
                    ratio_is: "-",
                    goal: "≤ 80 MiB",
                    met: mib(max) <= 80.0,
                },
                Figure {
                    name: "preview list, 5 previews (median of 5)".into(),
                    ours: fmt_secs(list),
                    reference: "-".into(),
                    ratio: None,
                    ratio_is: "-",
                    goal: "≤ 0.5 s",
                    met: list <= Duration::from_millis(500),
                },
            ])
        })();
        // The previews by their label; then the templates made from the bench's own seeds.
        let _ = docker.remove_labelled_containers(&label);
        let _ = docker.remove_labelled_networks_and_volumes(&label);
        for template in templates {
            let _ = docker.remove_image(&template);
        }
        report(&result?, self.json)
    }
}
