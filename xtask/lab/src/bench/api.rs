//! `cargo lab bench api`: the API's per-request latency under load (wrk against
//! `GET /meetings?limit=50`) next to the bare query it runs (pgbench running the same SQL on
//! the same database at the same concurrency), plus the service's RSS under load; then the
//! same load over TLS (`sslmode=verify-full`, on a TLS-only copy of the database) against
//! plaintext, and with `--via-pooler` through pgbouncer in transaction mode against the direct
//! connection. Each variant is a fresh service process on the same data.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context, Result, bail};

use super::{Figure, report};
use xtask_core::{
    process::{self, wait_until},
    progress,
    workspace::{self, Workspace},
};

use crate::flags;

/// Meetings in the benchmark database: "a few thousand".
const MEETINGS: u32 = 5000;

/// One load run's figures.
struct Load {
    latency_ms: f64,
    per_second: f64,
    requests: u64,
    errors: u64,
}

impl flags::BenchApi {
    pub fn run(self, ws: &Workspace) -> Result<()> {
        for tool in ["wrk", "pgbench", "psql"] {
            if process::which(tool).is_none()
                && !Path::new("/usr/lib/postgresql/15/bin").join(tool).exists()
            {
                bail!("`{tool}` is not installed; `apt-get install wrk postgresql-15` (Debian)");
            }
        }
        let step = progress::step("building openeu-api (release)");
        let sh = &ws.sh;
        xshell::cmd!(
            sh,
            "cargo build --release --locked --quiet --package openeu-api"
        )
        .run()?;
        let binary = ws.target_dir()?.join("release/openeu-api");
        step.done();

        let step = progress::step(format!(
            "starting PostgreSQL with the migrations and {MEETINGS} meetings"
        ));
        let (files, extra) = database_inputs(ws)?;
        let db = openeu_testdb::Server::start(&files, &extra);
        step.done_with(&format!("port {}", db.port));

        let log = ws.scratch("bench")?.join("api-bench-service.log");
        let service = Service::start(&binary, &[("DATABASE_URL", db.url())], &log)?;
        let url = service.url();
        let result = (|| -> Result<(Load, Load, u64)> {
            // Warm both sides up: connections, prepared statements, caches.
            wrk(&url, self.connections, 2)?;
            let step = progress::step(format!(
                "wrk: {} connections for {}s on {url}",
                self.connections, self.seconds
            ));
            let peak = Arc::new(AtomicU64::new(0));
            let sampling = Arc::new(AtomicBool::new(true));
            let sampler = sample_rss(service.pid(), Arc::clone(&peak), Arc::clone(&sampling));
            let api = wrk(&url, self.connections, self.seconds);
            sampling.store(false, Ordering::Relaxed);
            let _ = sampler.join();
            let api = api?;
            step.done();
            let script = ws.scratch("bench")?.join("meetings.pgbench.sql");
            std::fs::write(
                &script,
                pgbench_script(&ws.path("crates/openeu-api/src/sql/meetings.sql"))?,
            )?;
            pgbench(&script, db.port, self.connections, 2)?;
            let step = progress::step(format!(
                "pgbench: the same SQL, {} connections for {}s",
                self.connections, self.seconds
            ));
            let bare = pgbench(&script, db.port, self.connections, self.seconds)?;
            step.done();
            Ok((api, bare, peak.load(Ordering::Relaxed)))
        })();
        drop(service);
        let (api, bare, rss_kib) = result?;

        // The same load over TLS, on a copy of the database that accepts TCP only over TLS.
        let step = progress::step("starting a TLS-only copy of the database");
        let tls_db = openeu_testdb::Server::start_tls(&files, &extra);
        let ca = tls_db
            .tls()
            .map(|t| t.ca.display().to_string())
            .unwrap_or_default();
        step.done_with(&format!("port {}", tls_db.port));
        let tls_url = format!("{}?sslmode=verify-full&sslrootcert={ca}", tls_db.url());
        let tls = self.variant(&binary, &[("DATABASE_URL", tls_url)], &log, "over TLS")?;
        drop(tls_db);

        let pooled = if self.via_pooler {
            let step = progress::step("starting pgbouncer (transaction mode)");
            let bouncer = openeu_testdb::Pgbouncer::start(&db, "transaction");
            step.done_with(&format!("port {}", bouncer.port));
            let env = [
                ("DATABASE_URL", bouncer.url()),
                ("DATABASE_POOL_MODE", "transaction".to_owned()),
            ];
            Some(self.variant(&binary, &env, &log, "through pgbouncer")?)
        } else {
            None
        };

        let overhead = api.latency_ms / bare.latency_ms - 1.0;
        let mut figures = vec![
            Figure {
                name: "GET /meetings?limit=50: API (wrk) vs its SQL (pgbench)".to_owned(),
                ours: format!("{:.3} ms, {:.0}/s", api.latency_ms, api.per_second),
                reference: format!("{:.3} ms, {:.0}/s", bare.latency_ms, bare.per_second),
                ratio: Some(1.0 + overhead),
                ratio_is: "latency ours / pgbench",
                goal: "<= 1.30 (+30 %)",
                met: overhead <= 0.30,
            },
            Figure {
                name: "errors under load (API, pgbench)".to_owned(),
                ours: format!("{} of {}", api.errors, api.requests),
                reference: format!("{} of {}", bare.errors, bare.requests),
                ratio: None,
                ratio_is: "",
                goal: "0",
                met: api.errors + bare.errors == 0,
            },
            Figure {
                name: "the API over TLS (verify-full) vs plaintext".to_owned(),
                ours: format!("{:.3} ms, {:.0}/s", tls.latency_ms, tls.per_second),
                reference: format!("{:.3} ms, {:.0}/s", api.latency_ms, api.per_second),
                ratio: Some(tls.latency_ms / api.latency_ms),
                ratio_is: "latency TLS / plaintext",
                goal: "<= 1.20 (+20 %)",
                met: tls.latency_ms / api.latency_ms <= 1.20 && tls.errors == 0,
            },
            Figure {
                name: format!("peak RSS of the API ({} connections)", self.connections),
                ours: format!("{:.1} MiB", rss_kib as f64 / 1024.0),
                reference: String::new(),
                ratio: None,
                ratio_is: "",
                goal: "",
                met: true,
            },
        ];
        if let Some(pooled) = pooled {
            figures.push(Figure {
                name: "the API via pgbouncer (transaction) vs direct".to_owned(),
                ours: format!("{:.3} ms, {:.0}/s", pooled.latency_ms, pooled.per_second),
                reference: format!("{:.3} ms, {:.0}/s", api.latency_ms, api.per_second),
                ratio: Some(pooled.latency_ms / api.latency_ms),
                ratio_is: "latency pooled / direct",
                // A cost to know, not to meet: the extra hop, a transaction per request and
                // a plan per execution are what transaction mode is.
                goal: "0 errors (cost reported)",
                met: pooled.errors == 0,
            });
        }
        report(&figures, self.json)?;
        Ok(())
    }

    /// The same load on a fresh service with `env` as its database variables.
    fn variant(
        &self,
        binary: &Path,
        env: &[(&str, String)],
        log: &Path,
        what: &str,
    ) -> Result<Load> {
        let service = Service::start(binary, env, log)?;
        let url = service.url();
        wrk(&url, self.connections, 2)?;
        let step = progress::step(format!(
            "wrk {what}: {} connections for {}s",
            self.connections, self.seconds
        ));
        let load = wrk(&url, self.connections, self.seconds)?;
        step.done();
        if load.errors > 0 {
            let logs = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = logs.lines().rev().take(5).collect();
            eprintln!(
                "{what}: {} errors; the service's last log lines:",
                load.errors
            );
            for line in tail.iter().rev() {
                eprintln!("  {line}");
            }
        }
        Ok(load)
    }
}

/// The service binary on a free loopback port, killed on drop.
struct Service {
    child: std::process::Child,
    port: u16,
}

impl Service {
    fn start(binary: &Path, env: &[(&str, String)], log: &Path) -> Result<Service> {
        let step = progress::step("starting the API");
        let port = xtask_core::net::free_port()?;
        let mut command = process::command(binary);
        command
            .env_clear()
            .env("PORT", port.to_string())
            .env("SUPABASE_JWT_SECRET", "bench-secret")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log)?);
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().context("starting openeu-api")?;
        let mut service = Service { child, port };
        let address = format!("127.0.0.1:{port}");
        wait_until("the API to listen", Duration::from_secs(30), || {
            if let Some(status) = service.child.try_wait()? {
                bail!("openeu-api exited ({status}); its log: {}", log.display());
            }
            Ok(std::net::TcpStream::connect(&address).is_ok())
        })?;
        step.done();
        Ok(service)
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/meetings?limit=50", self.port)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The bootstrap, the migrations, their history and MEETINGS generated meetings.
fn database_inputs(ws: &Workspace) -> Result<(Vec<PathBuf>, String)> {
    let files = workspace::schema_files(&ws.root)?;
    let extra = format!(
        "insert into public.meetings (id, source, title, description, start_time, end_time, country, location, search_text)
         select 'bench-' || i,
                (array['european_parliament','mep','council','commission','national_parliament'])[1 + i % 5],
                'Meeting on ' || (array['climate','energy','digital markets','migration','agriculture','trade'])[1 + i % 6] || ' ' || i,
                case when i % 2 = 0 then 'Agenda with several items about item ' || i end,
                timestamptz '2024-01-01 08:00:00+00' + i * interval '3 hours',
                timestamptz '2024-01-01 10:00:00+00' + i * interval '3 hours',
                (array['DE','FR','IT','ES','PL','NL','BE','AT','SE','EU'])[1 + i % 10],
                'Brussels', 'week ' || (i / 40)
         from generate_series(1, {MEETINGS}) as i;
         analyze;"
    );
    Ok((files, extra))
}

/// meetings.sql with the service's parameters bound as the default request binds them.
fn pgbench_script(sql_file: &Path) -> Result<String> {
    let sql = std::fs::read_to_string(sql_file)
        .with_context(|| format!("reading {}", sql_file.display()))?;
    // The statement the service prepares for the default request: no filter, limit 50.
    let script = sql
        .replace("{filters}", "true")
        .replace("{limit}", "50")
        .replace("{offset}", "0");
    let script: String = script
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    Ok(format!("{};\n", script.trim_end().trim_end_matches(';')))
}

fn wrk(url: &str, connections: u32, seconds: u32) -> Result<Load> {
    // One client thread each for wrk and pgbench: on a small machine the load generator
    // competes for the same cores as the server it measures.
    let threads = "1".to_owned();
    let out = process::command("wrk")
        .args([
            "-t",
            &threads,
            "-c",
            &connections.to_string(),
            "-d",
            &format!("{seconds}s"),
            "--latency",
            url,
        ])
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse_wrk(&text).with_context(|| format!("cannot read wrk's report:\n{text}"))
}

fn parse_wrk(text: &str) -> Option<Load> {
    let latency = text
        .lines()
        .find(|l| l.trim_start().starts_with("Latency") && !l.contains("Distribution"))?;
    let latency_ms = duration_ms(latency.split_whitespace().nth(1)?)?;
    let per_second: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))?
        .trim()
        .parse()
        .ok()?;
    let requests: u64 = text
        .lines()
        .find(|l| l.contains(" requests in "))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let non_2xx: u64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    let socket: u64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Socket errors:"))
        .map_or(0, |rest| {
            rest.split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum()
        });
    Some(Load {
        latency_ms,
        per_second,
        requests,
        errors: non_2xx + socket,
    })
}

/// "2.31ms", "850.00us", "1.20s" → milliseconds.
fn duration_ms(text: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    Some(number.parse::<f64>().ok()? * factor)
}

fn pgbench(script: &Path, port: u16, connections: u32, seconds: u32) -> Result<Load> {
    let program =
        process::which("pgbench").unwrap_or_else(|| "/usr/lib/postgresql/15/bin/pgbench".into());
    let out = process::command(program)
        .args([
            "-n",
            "-M",
            "prepared",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-p",
            &port.to_string(),
        ])
        .args([
            "-c",
            &connections.to_string(),
            "-j",
            "1",
            "-T",
            &seconds.to_string(),
            "-f",
        ])
        .arg(script)
        .arg("postgres")
        .output()
        .context("running pgbench")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "pgbench failed: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse_pgbench(&text).with_context(|| format!("cannot read pgbench's report:\n{text}"))
}

fn parse_pgbench(text: &str) -> Option<Load> {
    let latency_ms: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("latency average = "))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let per_second: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let requests: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("number of transactions actually processed: "))?
        .split(['/', ' '])
        .next()?
        .parse()
        .ok()?;
    let errors = text
        .lines()
        .find_map(|l| l.strip_prefix("number of failed transactions: "))
        .and_then(|n| n.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    Some(Load {
        latency_ms,
        per_second,
        requests,
        errors,
    })
}

/// Samples `VmRSS` of `pid` every 50 ms while `running`, keeping the peak (KiB).
fn sample_rss(
    pid: u32,
    peak: Arc<AtomicU64>,
    running: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while running.load(Ordering::Relaxed) {
            if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                let kib = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                    .unwrap_or(0);
                peak.fetch_max(kib, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_wrk_and_pgbench_reports() {
        let wrk = "Running 10s test @ http://127.0.0.1:1/meetings?limit=50\n  2 threads and 8 connections\n  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency     2.50ms  710.00us  12.00ms   80.00%\n    Req/Sec     1.60k   100.00     1.80k    70.00%\n  Latency Distribution\n     50%    2.40ms\n  32000 requests in 10.00s, 100.00MB read\n  Non-2xx or 3xx responses: 3\nRequests/sec:   3200.00\nTransfer/sec:     10.00MB\n";
        let load = parse_wrk(wrk).unwrap();
        assert_eq!(
            (load.latency_ms, load.per_second, load.requests, load.errors),
            (2.5, 3200.0, 32000, 3)
        );
        let pg = "transaction type: meetings.sql\nnumber of transactions actually processed: 41000\nnumber of failed transactions: 0 (0.000%)\nlatency average = 1.950 ms\ninitial connection time = 5.000 ms\ntps = 4100.123456 (without initial connection time)\n";
        let load = parse_pgbench(pg).unwrap();
        assert_eq!(
            (load.latency_ms, load.requests, load.errors),
            (1.95, 41000, 0)
        );
        assert!((load.per_second - 4100.123456).abs() < 1e-9);
        assert_eq!(duration_ms("850.00us"), Some(0.85));
    }

    #[test]
    fn the_pgbench_script_binds_every_parameter() {
        let root = xtask_core::workspace::find_root().unwrap();
        let file = root.join("crates/openeu-api/src/sql/meetings.sql");
        let script = pgbench_script(&file).unwrap();
        for placeholder in ["{filters}", "{limit}", "{offset}", "$"] {
            assert!(
                !script.contains(placeholder),
                "{placeholder} left in:\n{script}"
            );
        }
        assert!(script.trim_end().ends_with(';'));
    }
}
