//! Render preview instances find their database through the Supabase Management API: the
//! branch whose `git_branch` is `RENDER_GIT_BRANCH`, then that branch's connection settings,
//! waiting (with a deadline) while it is still coming up. Runs once, before the server starts.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;

use crate::log;

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
    db_host: String,
    db_port: u16,
    db_user: Option<String>,
    db_pass: Option<String>,
    status: String,
}

/// Where to connect; the password stays out of Debug output.
pub struct Resolved {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    pub branch: String,
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
                return Ok(Resolved {
                    host: config.db_host,
                    port: config.db_port,
                    user: config.db_user.unwrap_or_else(|| "postgres".to_owned()),
                    password: config.db_pass.unwrap_or_default(),
                    branch: branch.name.clone(),
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
