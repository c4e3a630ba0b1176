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

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::Value;

use crate::{
    http::Response,
    https::{self, api::NO_BODY},
};

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

/// The Management API with one token: the shared JSON-API core (https/api.rs), which it derefs
/// to (`policy`, `rate` and the counters are the core's).
pub struct Supabase(https::api::Api);

impl std::ops::Deref for Supabase {
    type Target = https::api::Api;
    fn deref(&self) -> &https::api::Api {
        &self.0
    }
}

impl std::ops::DerefMut for Supabase {
    fn deref_mut(&mut self) -> &mut https::api::Api {
        &mut self.0
    }
}

impl Supabase {
    pub fn new(base: &str, token: &str, client: https::Client) -> Supabase {
        let supabase = https::api::Service {
            name: "Supabase",
            limit: "Supabase's rate limit (120 requests a minute)",
            reset_header: "X-RateLimit-Reset",
            error: api_error,
        };
        Supabase(https::api::Api::new(supabase, base, token, client))
    }

    /// The project's branches; an error that says so when branching is off (422).
    pub fn branches(&self, project: &str) -> Result<Vec<Branch>> {
        let path = format!("/v1/projects/{project}/branches");
        let response = self.call("GET", &path, NO_BODY)?;
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
        let body = BranchInput {
            branch_name: name,
            git_branch,
        };
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
        let response = self.call("GET", &path, NO_BODY)?;
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
        let response = self.call("DELETE", &path, NO_BODY)?;
        if !(200..300).contains(&response.status) && response.status != 404 {
            return Err(api_error("DELETE", &path, &response));
        }
        Ok(())
    }
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

/// The body of "Create a database branch".
#[derive(Serialize)]
struct BranchInput<'a> {
    branch_name: &'a str,
    git_branch: &'a str,
}
