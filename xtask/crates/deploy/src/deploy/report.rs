//! Deploy's report: the duration of each phase, and the result on stdout (one JSON object with
//! `--json`, else one line). Progress goes to stderr elsewhere.

use std::time::Instant;

use anyhow::Result;

use super::{Exit, exit};
use serde_json::{Value, json};

/// Seconds per phase, in order, for the report.
#[derive(Default)]
pub(super) struct Phases(Vec<(&'static str, f64)>);

impl Phases {
    pub(super) fn time<T>(
        &mut self,
        name: &'static str,
        f: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let started = Instant::now();
        let result = f();
        self.0.push((name, started.elapsed().as_secs_f64()));
        result
    }

    pub(super) fn json(&self) -> Value {
        Value::Object(
            self.0
                .iter()
                .map(|(k, v)| ((*k).to_owned(), json!((v * 1000.0).round() / 1000.0)))
                .collect(),
        )
    }
}

/// The report before the run: every key present, so a script can rely on the shape.
pub(super) fn new(skip_smoke: bool, dry_run: bool) -> Value {
    json!({
        "service": Value::Null,
        "deploy_id": Value::Null,
        "status": Value::Null,
        "commit": Value::Null,
        "image": Value::Null,
        "digest": Value::Null,
        "url": Value::Null,
        "migrations_applied": [],
        "smoke": {"ran": false, "skipped": skip_smoke, "image": Value::Null, "url_checks": false},
        "dry_run": dry_run,
    })
}

/// Adds the phases, the total duration, the exit code and the error (if any).
pub(super) fn finish(report: &mut Value, phases: &Phases, started: Instant, result: &Result<()>) {
    report["phases"] = phases.json();
    report["duration_s"] = json!((started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0);
    let code = match result {
        Ok(()) => exit::LIVE,
        Err(err) => err.downcast_ref::<Exit>().map_or(exit::ERROR, |e| e.code),
    };
    report["exit_code"] = json!(code);
    if let Err(err) = result {
        report["error"] = json!(format!("{err:#}"));
    }
}

/// The result on stdout: the whole report with `--json`, else one line when the deploy is live.
pub(super) fn print(report: &Value, json: bool, ok: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else if ok {
        println!(
            "{} {} live at {} ({})",
            report["deploy_id"].as_str().unwrap_or_default(),
            report["status"].as_str().unwrap_or_default(),
            report["url"].as_str().unwrap_or_default(),
            report["image"]
                .as_str()
                .or(report["commit"].as_str())
                .unwrap_or_default()
        );
    }
    Ok(())
}
