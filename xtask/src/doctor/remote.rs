//! `cargo xtask doctor --remote`: the production side, one line each with the fix: the Render
//! API key, the service (exists, not suspended, how it deploys) and its env vars (env/compare.rs),
//! the registry's credentials (a login into a private client config, as deploy's push does),
//! and the production database: reachable under the TLS policy of pgtls.rs, with its migration
//! history compared with the repository (db/push.rs: pending, drift). It changes nothing.

use std::time::Duration;

use anyhow::{Result, bail};
use openeu_env::Target;

use super::Check;
use xtask_core::{
    docker::{Docker, credentials::PrivateConfig, registry},
    https, pgtls, process,
    render::{self, ApiError},
    workspace::Workspace,
};
use xtask_data::db::push::{self, Conn};
use xtask_deploy::env::compare;

pub(super) fn checks(ws: &Workspace) -> Vec<Check> {
    let mut checks = render_checks(ws);
    checks.push(registry_check(ws));
    checks.extend(database_checks(ws));
    // One line each: psql's and docker's messages span lines.
    for check in &mut checks {
        check.detail = check
            .detail
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
    }
    checks
}

fn render_checks(ws: &Workspace) -> Vec<Check> {
    let key_fix = "create an API key (Render dashboard → Account settings → API keys) and export it as RENDER_API_KEY".to_owned();
    let client = match https::Client::new(https::Timeouts::default()) {
        Ok(client) => client,
        Err(err) => {
            return vec![Check::new(
                "render api",
                Err((
                    format!("{err:#}"),
                    "check the system's CA bundle (SSL_CERT_FILE)".to_owned(),
                )),
            )];
        }
    };
    let (api, id) = match render::service::api_from_env(ws, "production", &client) {
        Ok(pair) => pair,
        Err(err) => {
            let detail = format!("{err:#}");
            let fix = if detail.starts_with("RENDER_API_KEY") {
                key_fix
            } else {
                "export RENDER_SERVICE_ID=srv-…, or set service-id.production in [workspace.metadata.xtask.render] (or fix RENDER_API_URL)".to_owned()
            };
            return vec![Check::new("render api", Err((detail, fix)))];
        }
    };
    let service = match api.service(&id) {
        Ok(service) => service,
        Err(err) => {
            let status = err.downcast_ref::<ApiError>().map(|e| e.status);
            let detail = format!("{err:#}");
            return match status {
                Some(401 | 403) => vec![
                    Check::new("render api key", Err((detail, key_fix))),
                    Check::new(
                        format!("render service {id}"),
                        Err((
                            "not checked: the key was refused".to_owned(),
                            "fix the key first".to_owned(),
                        )),
                    ),
                ],
                Some(404) => vec![
                    Check::new("render api key", Ok(format!("accepted by {}", api.base()))),
                    Check::new(
                        format!("render service {id}"),
                        Err((
                            format!("no such service for this key: {detail}"),
                            "set RENDER_SERVICE_ID to the srv-… id in the service's dashboard URL"
                                .to_owned(),
                        )),
                    ),
                ],
                _ => vec![Check::new(
                    "render api",
                    Err((
                        detail,
                        format!("check the network and RENDER_API_URL ({})", api.base()),
                    )),
                )],
            };
        }
    };
    let mut checks = vec![Check::new(
        "render api key",
        Ok(format!("accepted by {}", api.base())),
    )];
    let kind = match &service.kind {
        render::Kind::Image { image_path } => format!("image-backed, pulls {image_path}"),
        render::Kind::Git { repo, branch } => format!(
            "Git-backed, builds {repo}{}",
            branch
                .as_deref()
                .map(|b| format!(" ({b})"))
                .unwrap_or_default()
        ),
    };
    checks.push(Check::new(
        format!("render service {id}"),
        if service.suspended {
            Err((
                format!("{} is suspended ({kind})", service.name),
                "resume it in the Render dashboard (Settings → Resume service)".to_owned(),
            ))
        } else {
            Ok(format!("{}, not suspended, {kind}", service.name))
        },
    ));
    checks.push(Check::new(
        "render env vars",
        match api.env_vars(&id) {
            Ok(vars) => {
                let comparison = compare::compare(Target::Production, &vars, None);
                if comparison.ok() {
                    Ok(format!(
                        "{} set, as the env spec wants for production",
                        vars.len()
                    ))
                } else {
                    let names: Vec<&str> = comparison
                        .findings
                        .iter()
                        .map(|f| f.name.as_str())
                        .collect();
                    Err((
                        format!("{} problem(s): {}", names.len(), names.join(", ")),
                        "`cargo xtask env check --service` names each with its fix".to_owned(),
                    ))
                }
            }
            Err(err) => Err((
                format!("{err:#}"),
                "check the API key's access to the service".to_owned(),
            )),
        },
    ));
    checks
}

/// As deploy's preflight: with credentials, a real login (password through stdin, into a
/// private client config deleted afterwards); without, fine only for a registry on this machine.
fn registry_check(ws: &Workspace) -> Check {
    let server = &ws.config.registry;
    let name = format!("registry credentials {server}");
    let fix =
        "check DOCKER_REGISTRY_USERNAME and DOCKER_REGISTRY_PASSWORD (a token with push rights)"
            .to_owned();
    let Some(creds) = registry::Credentials::from_env() else {
        return if ws.config.registry_is_local() {
            Check::new(
                name,
                Ok("none set; the local registry needs none".to_owned()),
            )
        } else {
            Check::new(
                name,
                Err((
                    "DOCKER_REGISTRY_USERNAME and DOCKER_REGISTRY_PASSWORD are not set: the push needs them".to_owned(),
                    fix,
                )),
            )
        };
    };
    let login = PrivateConfig::create().and_then(|config| {
        Docker::new(ws).login(server, &creds.username, &creds.password, config.path())
    });
    Check::new(
        name,
        match login {
            Ok(()) => Ok(format!("user {} logged in", creds.username)),
            Err(err) => Err((format!("{err:#}"), fix)),
        },
    )
}

fn database_checks(ws: &Workspace) -> Vec<Check> {
    let var = push::DB_URL_VAR;
    let name = "production database";
    let Some(url) = std::env::var(var).ok().filter(|v| !v.trim().is_empty()) else {
        return vec![Check::new(
            name,
            Err((
                format!("{var} is not set"),
                format!(
                    "export {var}: the direct (session) connection string, with ?sslmode=verify-full&sslrootcert=<Supabase's CA>"
                ),
            )),
        )];
    };
    let tls = match pgtls::psql_env(&url, false) {
        Ok(env) => env,
        Err(err) => {
            return vec![Check::new(
                name,
                Err((
                    format!("{var}: {err:#}"),
                    format!(
                        "add ?sslmode=verify-full&sslrootcert=<CA file> (or at least sslmode=require) to {var}"
                    ),
                )),
            )];
        }
    };
    let conn = match Conn::from_url(&url) {
        Ok(conn) => conn,
        Err(err) => {
            return vec![Check::new(
                name,
                Err((
                    format!("{var}: {err:#}"),
                    format!("fix {var}'s form: postgres://user:password@host:5432/postgres"),
                )),
            )];
        }
    };
    let query = |sql: &str| -> Result<String> {
        let mut cmd = conn.psql();
        cmd.envs(tls.iter().map(|(k, v)| (*k, v.as_str())));
        cmd.args(["-At", "-c", sql]);
        let out = process::output_with_timeout(cmd, None, Duration::from_secs(60))?;
        if !out.status.success() {
            bail!(
                "psql on {}: {}",
                conn.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let probe = query(
        "select coalesce((select ssl from pg_stat_ssl where pid = pg_backend_pid()), false), current_setting('server_version');",
    );
    let loopback = conn.host == "localhost"
        || conn.host.starts_with('/')
        || conn
            .host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let reachable = match probe {
        Ok(row) => {
            let (ssl, version) = row.split_once('|').unwrap_or((row.as_str(), "?"));
            let ssl = ssl == "t";
            if ssl {
                Ok(format!(
                    "{} reachable over TLS, PostgreSQL {version}",
                    conn.display()
                ))
            } else if loopback {
                Ok(format!(
                    "{} reachable, plaintext (loopback), PostgreSQL {version}",
                    conn.display()
                ))
            } else {
                Err((
                    format!("{} answered without TLS", conn.display()),
                    format!("add ?sslmode=verify-full&sslrootcert=<CA file> to {var}"),
                ))
            }
        }
        Err(err) => {
            let detail = format!("{err:#}");
            let fix = if detail.contains("no encryption") {
                format!(
                    "the server requires TLS: add ?sslmode=verify-full&sslrootcert=<CA file> (or at least sslmode=require) to {var}"
                )
            } else {
                format!(
                    "check {var} (host, port, password) and that the database accepts this machine"
                )
            };
            Err((detail, fix))
        }
    };
    let up = reachable.is_ok();
    let mut checks = vec![Check::new(name, reachable)];
    if up {
        checks.push(Check::new(
            "migration history",
            match push::plan_with(ws, query) {
                Ok(plan) if plan.pending.is_empty() => Ok(format!(
                    "{} applied, the same as {}",
                    plan.applied.len(),
                    xtask_core::workspace::MIGRATIONS_DIR
                )),
                Ok(plan) => Ok(format!(
                    "{} applied, {} pending ({}): the next `cargo xtask deploy` (or `db push`) applies them",
                    plan.applied.len(),
                    plan.pending.len(),
                    plan.pending_versions().join(", ")
                )),
                Err(err) => Err((
                    format!("{err:#}"),
                    "as the message says; `cargo xtask db push --dry-run` shows the same comparison".to_owned(),
                )),
            },
        ));
    }
    checks
}
