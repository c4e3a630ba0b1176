//! `cargo xtask bench deploy`: the deploy command against the Render stub with instant status
//! changes, on this workspace (which must pass the deploy's preflight: clean and pinned). An
//! already pushed image is deployed (`--image`), so the figures are xtask's own: preflight,
//! trigger, noticing `live`, verification.
//!
//! Not measured here yet: the bytes a source-only change pushes, and a Git-backed Render build
//! with the pinned base against a cold build (see the README).

use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::{
    bench::{Figure, fmt_secs, median, report},
    deploy::stub::{self, Scenario, Stub},
    flags, process,
    workspace::Workspace,
};

impl flags::BenchDeploy {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        let head = ws
            .sh
            .cmd("git")
            .args(["rev-parse", "HEAD"])
            .quiet()
            .read()
            .context("the workspace must be a git checkout")?;
        let mut schema = vec![ws.path(crate::workspace::SUPABASE_COMPAT_SQL)];
        schema.extend(
            crate::db::push::local_migrations(&ws.root)?
                .into_iter()
                .map(|m| m.path),
        );
        // Every migration applied already: the deploy has none pending, as usual.
        let versions: Vec<String> = crate::db::push::local_migrations(&ws.root)?
            .into_iter()
            .map(|m| format!("('{}')", m.version))
            .collect();
        let db = openeu_testdb::Server::start(
            &schema,
            &format!(
                "insert into supabase_migrations.schema_migrations (version) values {} on conflict do nothing",
                versions.join(", ")
            ),
        );
        let image = format!("{}@sha256:{}", ws.config.app_repository(), "ab".repeat(32));
        let exe = std::env::current_exe().context("finding the xtask binary")?;
        let mut wall = Vec::new();
        let mut notice = Vec::new();
        let mut most_requests = 0;
        for _ in 0..self.runs.max(1) {
            let stub = Stub::start(Scenario {
                api_key: "rnd_bench".to_owned(),
                image_path: Some(format!("{}:latest", ws.config.app_repository())),
                image_version: head[..12].to_owned(),
                statuses: vec!["build_in_progress".to_owned(), "live".to_owned()],
                ..Scenario::default()
            })?;
            let mut cmd = process::command(&exe);
            cmd.arg("--workspace")
                .arg(&ws.root)
                .args(["deploy", "--skip-smoke", "--json", "--image", &image])
                .env("RENDER_API_KEY", "rnd_bench")
                .env("RENDER_SERVICE_ID", stub::SERVICE_ID)
                .env("RENDER_API_URL", stub.api_url())
                .env("PRODUCTION_DATABASE_URL", db.url());
            let started = std::time::Instant::now();
            let out = process::output_with_timeout(cmd, None, Duration::from_mins(2))?;
            let took = started.elapsed();
            if !out.status.success() {
                bail!(
                    "the deploy against the stub failed (the workspace must pass the deploy's preflight):\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            wall.push(took);
            if let Ok(result) = serde_json::from_slice::<serde_json::Value>(&out.stdout) {
                crate::progress::note(format!(
                    "deploy took {:.2}s; its phases: {}",
                    took.as_secs_f64(),
                    result["phases"]
                ));
            }
            let journal = stub.journal();
            let (id, live_at) = stub
                .live_at()
                .into_iter()
                .next_back()
                .context("the stub saw no deploy go live")?;
            let seen = journal
                .iter()
                .find(|r| r.method == "GET" && r.target.ends_with(&id) && r.at > live_at)
                .map(|r| r.at)
                .context("xtask never asked again after live")?;
            notice.push(seen - live_at);
            let api_requests = journal
                .iter()
                .filter(|r| r.target.starts_with("/v1/"))
                .count();
            most_requests = most_requests.max(api_requests);
        }
        let wall = median(&mut wall);
        let notice = median(&mut notice);
        // Render's limit for GETs is 400 per minute; a whole deploy takes less than a minute.
        let limit: u32 = 400;
        let figures = [
            Figure {
                name: "deploy of a pushed image (xtask's own time)".to_owned(),
                ours: fmt_secs(wall),
                reference: "-".to_owned(),
                ratio: None,
                ratio_is: "",
                goal: "<= 1.5 s",
                met: wall <= Duration::from_millis(1500),
            },
            Figure {
                name: "stub turns live -> xtask notices".to_owned(),
                ours: fmt_secs(notice),
                reference: format!("{most_requests} API requests per deploy"),
                ratio: Some(
                    f64::from(u32::try_from(most_requests).unwrap_or(u32::MAX)) / f64::from(limit),
                ),
                ratio_is: "requests / 400 per minute",
                goal: "<= 1 s, under the limit",
                met: notice <= Duration::from_secs(1) && most_requests <= limit as usize,
            },
        ];
        report(&figures, self.json)
    }
}
