//! Deploy's report: the duration of each phase, and the result on stdout (one JSON object with
//! `--json`, else one line). Progress goes to stderr elsewhere.

use std::{collections::BTreeMap, time::Instant};

use anyhow::Result;

use serde::Serialize;

use super::{Exit, exit, plan::Plan};

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

    /// Seconds per phase to the millisecond, by name (a phase run twice keeps its last time).
    fn seconds(&self) -> BTreeMap<&'static str, f64> {
        self.0.iter().map(|(k, v)| (*k, millis(*v))).collect()
    }
}

fn millis(seconds: f64) -> f64 {
    (seconds * 1000.0).round() / 1000.0
}

/// The deploy's result, `deploy --json`: every key but `plan` and `error` present from the
/// start (null until known), so a script can rely on the shape. The fields are in alphabetical
/// order, the order the keys have always been printed in.
#[derive(Serialize)]
pub(super) struct Report {
    pub commit: Option<String>,
    pub deploy_id: Option<String>,
    pub digest: Option<String>,
    pub dry_run: bool,
    duration_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    exit_code: u8,
    pub image: Option<String>,
    pub migrations_applied: Vec<String>,
    phases: BTreeMap<&'static str, f64>,
    /// Only with `--dry-run`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    pub service: Option<String>,
    pub smoke: Smoke,
    pub status: Option<String>,
    pub target: String,
    pub url: Option<String>,
}

#[derive(Serialize)]
pub(super) struct Smoke {
    /// The image the smoke checks passed on.
    pub image: Option<String>,
    pub ran: bool,
    pub skipped: bool,
    /// Whether the read-only checks ran against the public URL.
    pub url_checks: bool,
}

impl Report {
    /// The report before the run.
    pub(super) fn new(target: &str, skip_smoke: bool, dry_run: bool) -> Report {
        Report {
            commit: None,
            deploy_id: None,
            digest: None,
            dry_run,
            duration_s: 0.0,
            error: None,
            exit_code: exit::LIVE,
            image: None,
            migrations_applied: Vec::new(),
            phases: BTreeMap::new(),
            plan: None,
            service: None,
            smoke: Smoke {
                image: None,
                ran: false,
                skipped: skip_smoke,
                url_checks: false,
            },
            status: None,
            target: target.to_owned(),
            url: None,
        }
    }

    /// Adds the phases, the total duration, the exit code and the error (if any).
    pub(super) fn finish(&mut self, phases: &Phases, started: Instant, result: &Result<()>) {
        self.phases = phases.seconds();
        self.duration_s = millis(started.elapsed().as_secs_f64());
        self.exit_code = match result {
            Ok(()) => exit::LIVE,
            Err(err) => err.downcast_ref::<Exit>().map_or(exit::ERROR, |e| e.code),
        };
        self.error = result.as_ref().err().map(|err| format!("{err:#}"));
    }

    /// The result on stdout: the whole report with `--json`, else one line when the deploy is
    /// live.
    pub(super) fn print(&self, json: bool, ok: bool) -> Result<()> {
        if json {
            println!("{}", serde_json::to_string_pretty(self)?);
        } else if ok {
            println!(
                "{} {} live at {} ({})",
                self.deploy_id.as_deref().unwrap_or_default(),
                self.status.as_deref().unwrap_or_default(),
                self.url.as_deref().unwrap_or_default(),
                self.image
                    .as_deref()
                    .or(self.commit.as_deref())
                    .unwrap_or_default()
            );
        }
        Ok(())
    }
}
