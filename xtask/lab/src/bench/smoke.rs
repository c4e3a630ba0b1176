//! `cargo lab bench smoke`: how long `cargo xtask smoke` takes to its verdict on a warm
//! machine (against a warm `up`), the per-check latency distribution, four runs at once
//! against one (wall time, and peak memory as the machine's used memory above its level before
//! the run), and how long a SIGKILLed run's leftovers last once the next run starts.

use std::{
    process::{Child, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Result, bail};

use super::{Figure, fmt_secs, report, secs};
use xtask_core::{docker::Docker, owner, process, progress, workspace::Workspace};
use xtask_images::image;

use crate::flags;

impl flags::BenchSmoke {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        let docker = Docker::new(ws);
        docker.require_engine()?;
        let exe = super::xtask_binary()?;
        let command = |args: &[&str]| {
            let mut cmd = process::command(&exe);
            cmd.arg("--workspace").arg(&ws.root).args(args);
            cmd.stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            cmd
        };
        let finish = |child: Child, what: &str| -> Result<String> {
            let out = child.wait_with_output()?;
            if !out.status.success() {
                bail!(
                    "{what} failed:\n{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        };

        let step = progress::step("warming: the image, one smoke run, up");
        let built = image::build(ws, &docker)?;
        finish(
            command(&["smoke", "--image", &built.image]).spawn()?,
            "smoke",
        )?;
        finish(command(&["up"]).spawn()?, "up")?;
        step.done();

        let step = progress::step("time to verdict: smoke (image hash-gated) vs up, warm");
        let started = Instant::now();
        let one_memory = Sampler::start();
        let json = finish(command(&["smoke", "--json"]).spawn()?, "smoke")?;
        let verdict = started.elapsed();
        let one_peak = one_memory.stop();
        let started = Instant::now();
        finish(command(&["up"]).spawn()?, "up")?;
        let up = started.elapsed();
        step.done();

        let report_json: serde_json::Value = serde_json::from_str(&json)?;
        let mut latencies: Vec<f64> = report_json["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["kind"] == "http")
            .filter_map(|c| c["latency_ms"].as_f64())
            .collect();
        latencies.sort_by(f64::total_cmp);
        let quantile = |q: f64| {
            latencies
                .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or_default()
        };

        let step = progress::step("four smoke runs at once vs one");
        let started = Instant::now();
        let four_memory = Sampler::start();
        let children = (0..4)
            .map(|_| command(&["smoke", "--image", &built.image, "--json"]).spawn())
            .collect::<std::io::Result<Vec<_>>>()?;
        for child in children {
            finish(child, "a parallel smoke run")?;
        }
        let four = started.elapsed();
        let four_peak = four_memory.stop();
        let started = Instant::now();
        finish(
            command(&["smoke", "--image", &built.image]).spawn()?,
            "smoke",
        )?;
        let one = started.elapsed();
        step.done();

        let step = progress::step("a SIGKILLed run's leftovers, from the next run's start");
        let sweep = sweep_latency(&docker, &|args| command(args), &built.image)?;
        step.done();

        let goal_verdict = 8.0;
        let figures = vec![
            Figure {
                name: "time to verdict: cargo xtask smoke (warm)".into(),
                ours: fmt_secs(verdict),
                reference: format!("{} (warm up)", fmt_secs(up)),
                ratio: Some(secs(verdict) / secs(up)),
                ratio_is: "smoke / up",
                goal: "<= 8 s",
                met: secs(verdict) <= goal_verdict,
            },
            Figure {
                name: format!("per-check latency, {} HTTP checks", latencies.len()),
                ours: format!("p50 {:.1} ms, p90 {:.1} ms", quantile(0.5), quantile(0.9)),
                reference: format!("max {:.1} ms", quantile(1.0)),
                ratio: None,
                ratio_is: "",
                goal: "report",
                met: true,
            },
            Figure {
                name: "four runs at once vs one: wall time".into(),
                ours: fmt_secs(four),
                reference: fmt_secs(one),
                ratio: Some(secs(four) / secs(one)),
                ratio_is: "four / one",
                goal: "report (no collisions)",
                met: true,
            },
            Figure {
                name: "four runs at once vs one: peak memory".into(),
                ours: format!("{} MiB", four_peak / 1024),
                reference: format!("{} MiB", one_peak / 1024),
                ratio: Some(four_peak.max(1) as f64 / one_peak.max(1) as f64),
                ratio_is: "four / one",
                goal: "report",
                met: true,
            },
            Figure {
                name: "SIGKILLed run's leftovers gone after".into(),
                ours: fmt_secs(sweep),
                reference: "10.00s (Ryuk)".into(),
                ratio: Some(secs(sweep) / 10.0),
                ratio_is: "ours / Ryuk's",
                goal: "<= 10 s from next start",
                met: secs(sweep) <= 10.0,
            },
        ];
        report(&figures, self.json)
    }
}

/// Kills a run once its app container exists, starts the next, and times how long the dead
/// run's resources last from that start.
fn sweep_latency(
    docker: &Docker<'_>,
    command: &dyn Fn(&[&str]) -> std::process::Command,
    image: &str,
) -> Result<Duration> {
    let mut victim = command(&["smoke", "--image", image]).spawn()?;
    let pid = victim.id().to_string();
    let leftovers = || -> Result<usize> {
        Ok(docker
            .labelled_owners(&[owner::OWNER_PID_LABEL])?
            .iter()
            .filter(|l| l.first() == Some(&pid))
            .count())
    };
    let waited = process::wait_until(
        "the victim run's containers",
        Duration::from_secs(120),
        || Ok(leftovers()? >= 3),
    );
    let _ = victim.kill();
    let _ = victim.wait();
    waited?;
    let started = Instant::now();
    let next = command(&["smoke", "--image", image]).spawn()?;
    let result = process::wait_until(
        "the killed run's leftovers to be swept",
        Duration::from_secs(120),
        || Ok(leftovers()? == 0),
    )
    .map(|()| started.elapsed());
    let out = next.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "the run after the killed one failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    result
}

/// Samples the machine's used memory (MemTotal - MemAvailable) every 100 ms on a thread;
/// `stop` returns the peak above the level at `start`, in KiB.
struct Sampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

fn used_kib() -> u64 {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_default()
    };
    field("MemTotal:").saturating_sub(field("MemAvailable:"))
}

impl Sampler {
    fn start() -> Sampler {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let base = used_kib();
            let mut peak = base;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(used_kib());
                std::thread::sleep(Duration::from_millis(100));
            }
            peak - base
        });
        Sampler { stop, thread }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}
