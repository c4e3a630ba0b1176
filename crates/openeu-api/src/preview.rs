//! Render preview instances find their database through the Supabase Management API: the
//! branch whose `git_branch` is `RENDER_GIT_BRANCH`, then that branch's connection settings,
//! waiting (with a deadline) while it is still coming up. Runs once, before the server starts.
//!
//! Render's outbound traffic is IPv4, and a Supabase branch's direct host (`db.<ref>.supabase.co`)
//! has only an IPv6 address unless the project buys the IPv4 add-on. Where the direct host has no
//! IPv4 address, the branch is reached through its Supavisor pooler instead, whose details come
//! from `GET /v1/projects/{ref}/config/database/pooler` (operation `v1-get-pooler-config` in
//! Supabase's published OpenAPI document: an array of `SupavisorConfigResponse`, with `db_host`,
//! `db_port`, `db_user`, `db_name`, `pool_mode` and `database_type`, PRIMARY or READ_REPLICA).
//! The pooler takes the branch's own password.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;

use crate::{connection::PoolMode, log};

/// How often a branch that is coming up is asked again.
const POLL: Duration = Duration::from_secs(1);

#[derive(Debug, Deserialize)]
struct Branch {
    id: String,
    #[serde(default)]
    name: String,
    git_branch: Option<String>,
}

#[derive(Debug, Deserialize)]
struct BranchConfig {
    /// The branch's own project ref.
    #[serde(rename = "ref")]
    project_ref: String,
    db_host: String,
    db_port: u16,
    db_user: Option<String>,
    db_pass: Option<String>,
    status: String,
}

/// One entry of the pooler configuration (`SupavisorConfigResponse`).
#[derive(Debug, Deserialize)]
struct PoolerConfig {
    database_type: String,
    db_user: String,
    db_host: String,
    db_port: u16,
    db_name: String,
    pool_mode: String,
}

/// Where to connect; the password stays out of Debug output.
pub struct Resolved {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub database: String,
    pub branch: String,
    /// Direct, or the pooler's mode when the direct host has no IPv4 address.
    pub pool_mode: PoolMode,
}

impl std::fmt::Debug for Resolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}@{}:{} (branch {})",
            self.user, self.host, self.port, self.branch
        )
    }
}

pub fn resolve(
    api_url: &str,
    project_id: &str,
    token: &str,
    git_branch: &str,
    deadline: Duration,
) -> Result<Resolved, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let api = api_url.trim_end_matches('/');
    let branches: Vec<Branch> = get_json(
        &agent,
        &format!("{api}/v1/projects/{project_id}/branches"),
        token,
    )?;
    let Some(branch) = branches
        .iter()
        .find(|b| b.git_branch.as_deref() == Some(git_branch))
    else {
        let known: Vec<&str> = branches
            .iter()
            .filter_map(|b| b.git_branch.as_deref())
            .collect();
        return Err(format!(
            "no Supabase branch of project {project_id} has git_branch {git_branch:?} (branches: {}); create it with Supabase's GitHub integration or `supabase branches create`",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ));
    };
    let started = Instant::now();
    loop {
        let config: BranchConfig =
            get_json(&agent, &format!("{api}/v1/branches/{}", branch.id), token)?;
        match config.status.as_str() {
            "ACTIVE_HEALTHY" => {
                let password = config.db_pass.unwrap_or_default();
                if has_ipv4(&config.db_host, config.db_port) {
                    return Ok(Resolved {
                        host: config.db_host,
                        port: config.db_port,
                        user: config.db_user.unwrap_or_else(|| "postgres".to_owned()),
                        password,
                        database: "postgres".to_owned(),
                        branch: branch.name.clone(),
                        pool_mode: PoolMode::Direct,
                    });
                }
                let url = format!(
                    "{api}/v1/projects/{}/config/database/pooler",
                    config.project_ref
                );
                let poolers: Vec<PoolerConfig> = get_json(&agent, &url, token)?;
                let Some(pooler) = poolers.into_iter().find(|p| p.database_type == "PRIMARY")
                else {
                    return Err(format!(
                        "Supabase branch {}'s direct host {} has no IPv4 address and {url} lists no PRIMARY pooler; enable the IPv4 add-on or the branch's pooler",
                        branch.name, config.db_host
                    ));
                };
                let pool_mode = PoolMode::parse(&pooler.pool_mode).ok_or_else(|| {
                    format!(
                        "{url}: pool_mode {:?} is neither session nor transaction",
                        pooler.pool_mode
                    )
                })?;
                log::info(
                    "the branch's direct host has no IPv4 address: using its pooler",
                    json!({ "direct_host": config.db_host, "pooler_host": pooler.db_host, "pool_mode": pooler.pool_mode }),
                );
                return Ok(Resolved {
                    host: pooler.db_host,
                    port: pooler.db_port,
                    user: pooler.db_user,
                    password,
                    database: pooler.db_name,
                    branch: branch.name.clone(),
                    pool_mode,
                });
            }
            "COMING_UP" | "UNKNOWN" | "RESTARTING" | "RESTORING" | "UPGRADING" | "RESIZING" => {
                if started.elapsed() >= deadline {
                    return Err(format!(
                        "Supabase branch {} is still {} after {}s; raise PREVIEW_DB_DEADLINE_SECS or check the branch in Supabase",
                        branch.name,
                        config.status,
                        deadline.as_secs()
                    ));
                }
                log::info(
                    "waiting for the preview database",
                    json!({ "branch": branch.name, "status": config.status }),
                );
                std::thread::sleep(POLL);
            }
            failed => {
                return Err(format!(
                    "Supabase branch {} is {failed}; it cannot serve this preview",
                    branch.name
                ));
            }
        }
    }
}

/// Whether `host` has an IPv4 address (an IPv4 literal, or a name that resolves to one).
fn has_ipv4(host: &str, port: u16) -> bool {
    use std::net::ToSocketAddrs;
    (host, port)
        .to_socket_addrs()
        .is_ok_and(|mut addrs| addrs.any(|a| a.is_ipv4()))
}

fn get_json<T: for<'de> Deserialize<'de>>(
    agent: &ureq::Agent,
    url: &str,
    token: &str,
) -> Result<T, String> {
    let mut response = agent
        .get(url)
        .header("Authorization", &format!("Bearer {token}"))
        .header("Accept", "application/json")
        .call()
        .map_err(|e| format!("cannot reach the Supabase Management API at {url}: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_to_string()
        .map_err(|e| format!("reading {url}: {e}"))?;
    match status {
        200 => serde_json::from_str(&body)
            .map_err(|e| format!("{url} answered JSON we do not understand: {e}")),
        401 | 403 => Err(format!(
            "the Supabase Management API refused SUPABASE_REST_KEY (HTTP {status}) at {url}"
        )),
        404 => Err(format!(
            "{url} was not found (HTTP 404): check SUPABASE_PROJECT_ID"
        )),
        _ => Err(format!(
            "the Supabase Management API answered HTTP {status} at {url}"
        )),
    }
}
