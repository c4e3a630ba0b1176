//! The Supabase Management API, the parts previews use, as its published OpenAPI document
//! (shipped in the `supabase/cli` repository, `packages/api/src/generated/openapi.json`) names
//! them:
//!
//! - `GET /v1/projects/{ref}/branches` (`v1-list-all-branches`): `BranchResponse`s, with `id`
//!   (a UUID), `name`, `project_ref` (the branch's own project), `parent_project_ref`,
//!   `is_default`, `git_branch`, `persistent`, `status` (`CREATING_PROJECT`,
//!   `RUNNING_MIGRATIONS`, `MIGRATIONS_PASSED`, `MIGRATIONS_FAILED`, `FUNCTIONS_DEPLOYED`,
//!   `FUNCTIONS_FAILED`) and `created_at`. It answers 422 when branching is off for the project.
//! - `POST /v1/projects/{ref}/branches` (`v1-create-a-branch`): `CreateBranchBody`
//!   {`branch_name`, `git_branch`, …}; 201 with the `BranchResponse`.
//! - `GET /v1/branches/{branch_id_or_ref}` (`v1-get-a-branch-config`): `BranchDetailResponse`,
//!   whose `status` is the branch project's (`COMING_UP`, `ACTIVE_HEALTHY`, `INIT_FAILED`, …).
//!   The path takes the branch's project ref; the UUID form is deprecated, so it is never used.
//! - `DELETE /v1/branches/{branch_id_or_ref}` (`v1-delete-a-branch`), by project ref too.
//!
//! The API allows 120 requests a minute per token and says so in `X-RateLimit-Limit`,
//! `X-RateLimit-Remaining` and `X-RateLimit-Reset`; a 429 is waited out as they say. The token
//! travels in the Authorization header only, and no error carries it.

use std::{
    cell::Cell,
    time::{Duration, Instant},
};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::{deploy::render::Policy, http::Response, https};

pub const DEFAULT_API_URL: &str = "https://api.supabase.com";

/// A branch's migration status that ends the wait well.
pub const PASSED: [&str; 2] = ["MIGRATIONS_PASSED", "FUNCTIONS_DEPLOYED"];
/// A branch's migration status that ends the wait badly.
pub const FAILED: [&str; 2] = ["MIGRATIONS_FAILED", "FUNCTIONS_FAILED"];
/// Project statuses of a branch that will not come up by waiting.
pub const PROJECT_FAILED: [&str; 6] = [
    "INIT_FAILED",
    "REMOVED",
    "RESTORE_FAILED",
    "PAUSE_FAILED",
    "GOING_DOWN",
    "INACTIVE",
];

/// One database branch (`BranchResponse`).
#[derive(Clone, Debug)]
pub struct Branch {
    pub id: String,
    pub name: String,
    /// The branch's own project ref: how it is addressed.
    pub project_ref: String,
    pub git_branch: Option<String>,
    pub is_default: bool,
    pub persistent: bool,
    pub status: String,
    pub created_at: String,
}

impl Branch {
    pub fn from_json(value: &Value) -> Result<Branch> {
        let text = |key: &str| value[key].as_str().unwrap_or_default().to_owned();
        let project_ref = text("project_ref");
        if project_ref.is_empty() {
            bail!("Supabase sent a branch without project_ref: {value}");
        }
        Ok(Branch {
            id: text("id"),
            name: text("name"),
            project_ref,
            git_branch: value["git_branch"].as_str().map(str::to_owned),
            is_default: value["is_default"].as_bool().unwrap_or(false),
            persistent: value["persistent"].as_bool().unwrap_or(false),
            status: text("status"),
            created_at: text("created_at"),
        })
    }

    /// The git branch it belongs to (its name when it has none).
    pub fn git(&self) -> &str {
        self.git_branch.as_deref().unwrap_or(&self.name)
    }
}

pub struct Supabase {
    base: String,
    /// Never printed: no Debug, and errors name the request, not its headers.
    authorization: String,
    client: https::Client,
    pub policy: Policy,
    pub requests: Cell<u32>,
    pub rate_limited: Cell<u32>,
    /// What the last answer said: (remaining, time until reset).
    pub rate: Cell<Option<(u64, Duration)>>,
}

impl Supabase {
    pub fn new(base: &str, token: &str, client: https::Client) -> Supabase {
        Supabase {
            base: base.trim_end_matches('/').to_owned(),
            authorization: format!("Bearer {}", token.trim()),
            client,
            policy: Policy::default(),
            requests: Cell::new(0),
            rate_limited: Cell::new(0),
            rate: Cell::new(None),
        }
    }

    /// One exchange, with 429s waited out as the rate-limit headers say.
    fn exchange(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Response> {
        let url = format!("{}{path}", self.base);
        let body = body.map(|b| serde_json::to_vec(b).expect("JSON serialises"));
        let started = Instant::now();
        loop {
            self.requests.set(self.requests.get() + 1);
            let response = self.client.send(
                method,
                &url,
                &[
                    ("Authorization", &self.authorization),
                    ("Accept", "application/json"),
                ],
                body.as_deref(),
            )?;
            let rate = rate_limit(&response);
            self.rate.set(rate);
            if response.status != 429 {
                return Ok(response);
            }
            self.rate_limited.set(self.rate_limited.get() + 1);
            let wait = rate
                .map_or(Duration::from_secs(1), |(_, reset)| reset)
                .max(Duration::from_millis(100));
            if started.elapsed() + wait > self.policy.max_rate_wait {
                bail!(
                    "Supabase's rate limit (120 requests a minute): {method} {path} was refused with 429 for {:.0}s; try again later",
                    started.elapsed().as_secs_f64()
                );
            }
            crate::progress::note(format!(
                "rate limited by Supabase (429): waiting {:.1}s as X-RateLimit-Reset says",
                wait.as_secs_f64()
            ));
            std::thread::sleep(wait);
        }
    }

    /// An idempotent call: 5xx and connection errors are retried with bounded backoff.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Response> {
        let mut backoff = self.policy.first_backoff;
        let mut attempt = 1;
        loop {
            let outcome = self.exchange(method, path, body);
            let reason = match &outcome {
                Ok(r) if r.status >= 500 => format!("HTTP {}", r.status),
                Ok(_) => return outcome,
                Err(err) => format!("{err:#}"),
            };
            if attempt >= self.policy.attempts {
                return match outcome {
                    Ok(r) => Err(api_error(method, path, &r)),
                    Err(err) => Err(err.context(format!(
                        "Supabase did not answer {method} {path} after {attempt} attempts"
                    ))),
                };
            }
            crate::progress::note(format!(
                "{method} {path}: {reason}; retrying in {:.1}s",
                backoff.as_secs_f64()
            ));
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(self.policy.max_backoff);
            attempt += 1;
        }
    }

    /// The project's branches; an error that says so when branching is off (422).
    pub fn branches(&self, project: &str) -> Result<Vec<Branch>> {
        let path = format!("/v1/projects/{project}/branches");
        let response = self.call("GET", &path, None)?;
        if response.status == 422 {
            bail!(
                "Supabase: branching is not enabled for project {project} (GET {path} answered 422: {}); enable it in the dashboard (Project settings → Branching) or check SUPABASE_PROJECT_ID",
                message(&response)
            );
        }
        if response.status != 200 {
            return Err(api_error("GET", &path, &response));
        }
        response
            .json()?
            .as_array()
            .context("Supabase's branch list is not an array")?
            .iter()
            .map(Branch::from_json)
            .collect()
    }

    /// Creates a branch for `git_branch`. Not retried: a lost answer is resolved by listing.
    pub fn create_branch(&self, project: &str, name: &str, git_branch: &str) -> Result<Branch> {
        let path = format!("/v1/projects/{project}/branches");
        let body = json!({ "branch_name": name, "git_branch": git_branch });
        let response = self.exchange("POST", &path, Some(&body))?;
        if !(200..300).contains(&response.status) {
            if let Some(found) = self
                .branches(project)?
                .into_iter()
                .find(|b| b.git_branch.as_deref() == Some(git_branch))
            {
                return Ok(found);
            }
            return Err(api_error("POST", &path, &response));
        }
        Branch::from_json(&response.json()?)
    }

    /// The status of the branch's project (`BranchDetailResponse.status`), by its project ref.
    pub fn project_status(&self, branch_ref: &str) -> Result<String> {
        let path = format!("/v1/branches/{branch_ref}");
        let response = self.call("GET", &path, None)?;
        if response.status != 200 {
            return Err(api_error("GET", &path, &response));
        }
        Ok(response.json()?["status"]
            .as_str()
            .unwrap_or("UNKNOWN")
            .to_owned())
    }

    /// Deletes a branch by its project ref; absent is fine.
    pub fn delete_branch(&self, branch_ref: &str) -> Result<()> {
        let path = format!("/v1/branches/{branch_ref}");
        let response = self.call("DELETE", &path, None)?;
        if !(200..300).contains(&response.status) && response.status != 404 {
            return Err(api_error("DELETE", &path, &response));
        }
        Ok(())
    }
}

/// (remaining, time until reset) from `X-RateLimit-Remaining` and `X-RateLimit-Reset` (seconds,
/// or a Unix time), or `Retry-After`.
pub fn rate_limit(response: &Response) -> Option<(u64, Duration)> {
    let number = |name: &str| {
        response
            .header(name)
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let remaining = number("x-ratelimit-remaining").unwrap_or(u64::MAX);
    let reset = number("x-ratelimit-reset").or_else(|| number("retry-after"))?;
    Some((
        remaining,
        crate::deploy::render::reset_after(reset, std::time::SystemTime::now()),
    ))
}

fn message(response: &Response) -> String {
    response
        .json()
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| response.text().chars().take(300).collect())
}

fn api_error(method: &str, path: &str, response: &Response) -> anyhow::Error {
    let hint = match response.status {
        401 | 403 => {
            "; check SUPABASE_REST_KEY (a Supabase access token: Dashboard → Account → Access tokens)"
        }
        404 => "; check SUPABASE_PROJECT_ID",
        _ => "",
    };
    anyhow::anyhow!(
        "Supabase Management API: {method} {path} answered HTTP {}: {}{hint}",
        response.status,
        message(response)
    )
}
