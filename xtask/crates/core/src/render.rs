//! A client of Render's REST API: the few calls `deploy` needs, with rate limits honoured,
//! bounded retries, and the API key only ever in the `Authorization` header.
//!
//! Where each shape comes from (Render's OpenAPI schema, as compiled into its own CLI,
//! github.com/render-oss/cli at 85c8c2c):
//! - `pkg/client/types_gen.go` `Deploy`: `id`, `status`, `trigger`, `commit {id, message,
//!   createdAt}`, `image {ref, sha, registryCredential}` ("not present for Git-backed deploys"),
//!   `createdAt`, `startedAt`, `finishedAt`; `DeployWithCursor {cursor, deploy}` for lists.
//! - the 11 values of `DeployStatus`: created, queued, build_in_progress, update_in_progress,
//!   pre_deploy_in_progress, live, deactivated, build_failed, update_failed,
//!   pre_deploy_failed, canceled.
//! - `DeployTrigger`: api, manual, rollback, new_commit, … (shown as given).
//! - `CreateDeployJSONBody` (`POST /services/{id}/deploys`): `commitId` or `imageUrl` ("the
//!   host, repository, and image name all must match the currently configured image"),
//!   `clearCache`, `deployMode`. `client_gen.go` `CreateDeployResponse` has `JSON201 *Deploy`;
//!   Render answers 202 with an empty body when the deploy was queued behind another.
//! - `ListDeploysParams` (`GET /services/{id}/deploys`): `status` (repeatable), `limit`,
//!   `cursor`, created/updated/finished before/after.
//! - `POST /services/{id}/deploys/{deployId}/cancel` (`CancelDeploy`) answers the deploy.
//! - `RollbackDeployJSONBody` (`POST /services/{id}/rollback`): `{"deployId"}`, answers the new
//!   deploy (trigger `rollback`).
//! - `Service`: `id`, `name`, `type`, `ownerId`, `suspended` ("suspended"|"not_suspended"),
//!   `imagePath` (image-backed), `repo` and `branch` (Git-backed), `dashboardUrl`,
//!   `serviceDetails.url` and `serviceDetails.runtime` (docker or image) for web services
//!   (`WebServiceDetails`).
//! - `EnvVarWithCursor {cursor, envVar {key, value}}` (`GET /services/{id}/env-vars`,
//!   `GetEnvVarsForService`, `GetEnvVarsForServiceParams {cursor, limit}`: cursor pagination,
//!   the next page starts after the last item's `cursor`; `limit` is at most 100).
//! - `PUT /services/{id}/env-vars` (`UpdateEnvVarsForService`): "Replace all environment
//!   variables for a service with the provided list"; the body is `envVarInputArray`, each item
//!   `envVarKeyValue {key, value}` (or `envVarKeyGenerateValue {key, generateValue}`,
//!   pkg/client/envvar/envvar_gen.go); it answers 200 with `[EnvVarWithCursor]`.
//! - `PUT /services/{id}/env-vars/{envVarKey}` (`UpdateEnvVar`, "Add or update"): the body is
//!   `AddUpdateEnvVarInput`, `envVarValue {value}`; it answers 200 with `EnvVar {key, value}`.
//! - `DELETE /services/{id}/env-vars/{envVarKey}` (`DeleteEnvVar`): 204, no body.
//!   Both per-variable calls apply to variables set on the service, not to linked env groups.
//!   A recorded exchange with the real API (github.com/render-oss/terraform-provider-render at
//!   033eb45, internal/provider/webservice/resource/testdata/env_var_cassette.yaml) agrees:
//!   `PUT …/env-vars` with `[{"key":"foo","value":"bar"}]` answered 200 with
//!   `[{"envVar":{"key":"foo","value":"bar"},"cursor":"DLRR7F1e…"}]`; cursors are opaque
//!   base64-like text, so they are percent-encoded into the query.
//! - `GET /logs` (`ListLogsParams`): `ownerId`, `resource`, `startTime`, `endTime`,
//!   `direction`, `limit`; `Logs200Response {hasMore, logs [{id, labels, message,
//!   timestamp}], nextStartTime, nextEndTime}` (pkg/client/logs/logs_gen.go).
//! - Rate limits: `Ratelimit-Limit`, `Ratelimit-Remaining`, `Ratelimit-Reset` headers. The docs
//!   call Reset a timestamp; in practice it holds the seconds remaining. Both are accepted: a
//!   value above 10^9 is read as a Unix time.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::Value;

use crate::{
    encoding::percent_encode,
    http::Response,
    https::{self, api::NO_BODY},
};

mod previews;
pub mod service;

pub const DEFAULT_API_URL: &str = "https://api.render.com/v1";

/// Env vars asked for per page: Render's maximum `limit`.
const ENV_VAR_PAGE: usize = 100;

/// `serviceDetails.runtime` of a service that Render builds from a Dockerfile.
const DOCKER_RUNTIME: &str = "docker";

/// A deploy's status: all 11 of Render's, plus whatever a newer API may add.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    Created,
    Queued,
    BuildInProgress,
    UpdateInProgress,
    PreDeployInProgress,
    Live,
    Deactivated,
    BuildFailed,
    UpdateFailed,
    PreDeployFailed,
    Canceled,
    Other(String),
}

impl Status {
    pub fn parse(text: &str) -> Status {
        match text {
            "created" => Status::Created,
            "queued" => Status::Queued,
            "build_in_progress" => Status::BuildInProgress,
            "update_in_progress" => Status::UpdateInProgress,
            "pre_deploy_in_progress" => Status::PreDeployInProgress,
            "live" => Status::Live,
            "deactivated" => Status::Deactivated,
            "build_failed" => Status::BuildFailed,
            "update_failed" => Status::UpdateFailed,
            "pre_deploy_failed" => Status::PreDeployFailed,
            "canceled" => Status::Canceled,
            other => Status::Other(other.to_owned()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Status::Created => "created",
            Status::Queued => "queued",
            Status::BuildInProgress => "build_in_progress",
            Status::UpdateInProgress => "update_in_progress",
            Status::PreDeployInProgress => "pre_deploy_in_progress",
            Status::Live => "live",
            Status::Deactivated => "deactivated",
            Status::BuildFailed => "build_failed",
            Status::UpdateFailed => "update_failed",
            Status::PreDeployFailed => "pre_deploy_failed",
            Status::Canceled => "canceled",
            Status::Other(text) => text,
        }
    }

    /// Still on its way to a terminal status.
    pub fn in_progress(&self) -> bool {
        matches!(
            self,
            Status::Created
                | Status::Queued
                | Status::BuildInProgress
                | Status::UpdateInProgress
                | Status::PreDeployInProgress
        )
    }

    /// A terminal failure: the deploy will never serve traffic.
    pub fn failed(&self) -> bool {
        matches!(
            self,
            Status::BuildFailed | Status::UpdateFailed | Status::PreDeployFailed | Status::Canceled
        )
    }

    pub const IN_PROGRESS: [&'static str; 5] = [
        "created",
        "queued",
        "build_in_progress",
        "update_in_progress",
        "pre_deploy_in_progress",
    ];
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One deploy, as far as `deploy` reads it.
#[derive(Clone, Debug)]
pub struct Deploy {
    pub id: String,
    pub status: Status,
    pub trigger: Option<String>,
    pub commit: Option<String>,
    pub image_ref: Option<String>,
    pub image_sha: Option<String>,
    pub created_at: Option<String>,
    pub finished_at: Option<String>,
}

impl Deploy {
    pub fn from_json(value: &Value) -> Result<Deploy> {
        let shape = || format!("Render sent a deploy in an unexpected shape: {value}");
        // Every key but `id` is optional; a key that is present has to be a string.
        let text = |parent: &Value, key: &str| -> Result<Option<String>> {
            match &parent[key] {
                Value::Null => Ok(None),
                Value::String(s) => Ok(Some(s.clone())),
                other => Err(anyhow::anyhow!(
                    "invalid type: {other}, expected a string for `{key}`"
                ))
                .with_context(shape),
            }
        };
        let id = text(value, "id")?
            .ok_or_else(|| anyhow::anyhow!("missing field `id`"))
            .with_context(shape)?;
        let image = &value["image"];
        Ok(Deploy {
            id,
            status: Status::parse(text(value, "status")?.as_deref().unwrap_or("created")),
            trigger: text(value, "trigger")?,
            commit: text(&value["commit"], "id")?,
            image_ref: text(image, "ref")?,
            image_sha: text(image, "sha")?,
            created_at: text(value, "createdAt")?,
            finished_at: text(value, "finishedAt")?,
        })
    }

    /// What it deployed: the commit, or the image.
    pub fn what(&self) -> String {
        match (&self.commit, &self.image_ref) {
            (_, Some(image)) => match &self.image_sha {
                Some(sha) if !image.contains('@') => format!("{image}@{sha}"),
                _ => image.clone(),
            },
            (Some(commit), None) => format!("commit {}", short(commit)),
            (None, None) => "?".to_owned(),
        }
    }

    /// Whether this deploy ships `source`.
    pub fn ships(&self, source: &Source) -> bool {
        match source {
            Source::Commit(sha) => self.commit.as_deref() == Some(sha.as_str()),
            Source::Image { url, digest } => {
                self.image_ref.as_deref() == Some(url.as_str())
                    || self.image_sha.as_deref() == Some(digest.as_str())
            }
        }
    }
}

pub fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

/// What a trigger deploys.
#[derive(Clone, Debug)]
pub enum Source {
    /// Git-backed: Render builds this commit.
    Commit(String),
    /// Image-backed: `url` is `<registry>/<app>@sha256:…`.
    Image { url: String, digest: String },
}

impl Source {
    fn body(&self) -> TriggerBody<'_> {
        match self {
            Source::Commit(sha) => TriggerBody::CommitId(sha),
            Source::Image { url, .. } => TriggerBody::ImageUrl(url),
        }
    }
}

// The request bodies, as Render's API reference names their keys.

/// `{"commitId": …}` or `{"imageUrl": …}`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum TriggerBody<'a> {
    CommitId(&'a str),
    ImageUrl(&'a str),
}

/// One item of `envVarInputArray`.
#[derive(Serialize)]
struct EnvVarInput<'a> {
    key: &'a str,
    value: &'a str,
}

/// The body of `UpdateEnvVar`.
#[derive(Serialize)]
struct EnvVarValue<'a> {
    value: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RollbackInput<'a> {
    deploy_id: &'a str,
}

/// `previewInput`; without `plan` the preview has the service's.
/// How a service is deployed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Render pulls `image_path`'s repository.
    Image { image_path: String },
    /// Render builds the Dockerfile of `repo` at a commit.
    Git {
        repo: String,
        branch: Option<String>,
    },
}

#[derive(Clone, Debug)]
pub struct Service {
    pub id: String,
    pub name: String,
    pub owner_id: String,
    pub kind: Kind,
    pub suspended: bool,
    pub url: Option<String>,
    pub dashboard_url: Option<String>,
}

impl Service {
    fn from_json(value: &Value) -> Result<Service> {
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let id = text(&value["id"]).context("Render sent a service without an id")?;
        let runtime = value["serviceDetails"]["runtime"]
            .as_str()
            .or_else(|| value["serviceDetails"]["env"].as_str());
        let kind = match (text(&value["imagePath"]), text(&value["repo"])) {
            (Some(image_path), _) if runtime != Some(DOCKER_RUNTIME) => Kind::Image { image_path },
            (_, Some(repo)) => Kind::Git {
                repo,
                branch: text(&value["branch"]),
            },
            (Some(image_path), None) => Kind::Image { image_path },
            (None, None) => bail!(
                "service {id} has neither an image nor a repository; only Docker services deploy with xtask"
            ),
        };
        Ok(Service {
            name: text(&value["name"]).unwrap_or_else(|| id.clone()),
            owner_id: text(&value["ownerId"]).unwrap_or_default(),
            suspended: value["suspended"].as_str() == Some("suspended"),
            url: text(&value["serviceDetails"]["url"]),
            dashboard_url: text(&value["dashboardUrl"]),
            kind,
            id,
        })
    }
}

/// Render's API for one service: the shared JSON-API core (https/api.rs), which it derefs to
/// (`policy`, `rate` and the counters are the core's).
pub struct Api(https::api::Api);

impl std::ops::Deref for Api {
    type Target = https::api::Api;
    fn deref(&self) -> &https::api::Api {
        &self.0
    }
}

impl std::ops::DerefMut for Api {
    fn deref_mut(&mut self) -> &mut https::api::Api {
        &mut self.0
    }
}

/// An API error with the HTTP status, so callers can tell "not found" from "unauthorised".
#[derive(Debug)]
pub struct ApiError {
    pub status: u16,
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl Api {
    pub fn new(base: &str, api_key: &str, client: https::Client) -> Api {
        let render = https::api::Service {
            name: "Render",
            limit: "Render's rate limit",
            reset_header: "Ratelimit-Reset",
            error: api_error,
        };
        Api(https::api::Api::new(render, base, api_key, client))
    }

    fn get_json(&self, path: &str) -> Result<Value> {
        let response = self.call("GET", path, NO_BODY)?;
        if response.status != 200 {
            return Err(api_error("GET", path, &response));
        }
        response.json()
    }

    pub fn service(&self, id: &str) -> Result<Service> {
        Service::from_json(&self.get_json(&format!("/services/{id}"))?)
    }

    pub fn deploy(&self, service: &str, id: &str) -> Result<Deploy> {
        Deploy::from_json(&self.get_json(&format!("/services/{service}/deploys/{id}"))?)
    }

    /// The newest deploys first; `statuses` filters (empty: all).
    pub fn deploys(&self, service: &str, statuses: &[&str], limit: u32) -> Result<Vec<Deploy>> {
        let mut path = format!("/services/{service}/deploys?limit={limit}");
        for status in statuses {
            path.push_str(&format!("&status={status}"));
        }
        let value = self.get_json(&path)?;
        value
            .as_array()
            .context("Render's deploy list is not an array")?
            .iter()
            .map(|item| Deploy::from_json(&item["deploy"]))
            .collect()
    }

    /// The service's environment variables with their values, every page of them. The values
    /// hold secrets: callers validate them and never print them.
    pub fn env_vars(&self, service: &str) -> Result<BTreeMap<String, String>> {
        let mut vars = BTreeMap::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/services/{service}/env-vars?limit={ENV_VAR_PAGE}");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={}", percent_encode(c)));
            }
            let value = self.get_json(&path)?;
            let items = value
                .as_array()
                .context("Render's env var list is not an array")?;
            for item in items {
                if let Some(key) = item["envVar"]["key"].as_str() {
                    let value = item["envVar"]["value"].as_str().unwrap_or_default();
                    vars.insert(key.to_owned(), value.to_owned());
                }
            }
            match items.last().and_then(|i| i["cursor"].as_str()) {
                Some(next) if items.len() == ENV_VAR_PAGE => cursor = Some(next.to_owned()),
                _ => return Ok(vars),
            }
        }
    }

    /// Replaces all of the service's environment variables with `vars`, in one request: a
    /// variable left out is deleted, so the caller passes the ones it keeps too. Nothing is
    /// half-applied. Returns the variables as Render now holds them.
    pub fn replace_env_vars(
        &self,
        service: &str,
        vars: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>> {
        let path = format!("/services/{service}/env-vars");
        let body: Vec<EnvVarInput<'_>> = vars
            .iter()
            .map(|(key, value)| EnvVarInput { key, value })
            .collect();
        // A PUT of the whole list is idempotent: retrying it after a lost answer is safe.
        let response = self.call("PUT", &path, Some(&body))?;
        if response.status != 200 {
            return Err(api_error("PUT", &path, &response));
        }
        let value = response.json()?;
        Ok(value
            .as_array()
            .context("Render's answer to the env var update is not an array")?
            .iter()
            .filter_map(|item| {
                let key = item["envVar"]["key"].as_str()?;
                let value = item["envVar"]["value"].as_str().unwrap_or_default();
                Some((key.to_owned(), value.to_owned()))
            })
            .collect())
    }

    /// Adds or updates one variable.
    pub fn set_env_var(&self, service: &str, key: &str, value: &str) -> Result<()> {
        let path = format!("/services/{service}/env-vars/{key}");
        let response = self.call("PUT", &path, Some(&EnvVarValue { value }))?;
        if response.status != 200 {
            return Err(api_error("PUT", &path, &response));
        }
        Ok(())
    }

    /// Deletes one variable; one that is already gone is not an error.
    pub fn delete_env_var(&self, service: &str, key: &str) -> Result<()> {
        let path = format!("/services/{service}/env-vars/{key}");
        let response = self.call("DELETE", &path, NO_BODY)?;
        if !matches!(response.status, 200 | 204 | 404) {
            return Err(api_error("DELETE", &path, &response));
        }
        Ok(())
    }

    /// Triggers a deploy of `source` and returns it. Never creates a duplicate: a 202 (queued,
    /// empty body) and a lost answer (5xx or a dropped connection after Render may have created
    /// the deploy) are resolved by listing the deploys created since `known` was taken.
    pub fn trigger(
        &self,
        service: &str,
        source: &Source,
        known: &BTreeSet<String>,
    ) -> Result<Deploy> {
        let path = format!("/services/{service}/deploys");
        let mut backoff = self.policy.first_backoff;
        for attempt in 1..=self.policy.attempts {
            let outcome = self.exchange("POST", &path, Some(&source.body()));
            match outcome {
                Ok(r) if r.status == 201 || (r.status == 200 && !r.body.is_empty()) => {
                    return Deploy::from_json(&r.json()?);
                }
                Ok(r) if r.status == 202 => {
                    crate::progress::note("Render queued the deploy (202); finding it");
                    return self
                        .find_new(service, source, known, &["queued"])?
                        .with_context(
                            || "Render answered 202 (queued) but lists no new queued deploy",
                        );
                }
                Ok(r) if r.status < 500 => return Err(api_error("POST", &path, &r)),
                other => {
                    let reason = match other {
                        Ok(r) => format!("HTTP {}", r.status),
                        Err(err) => format!("{err:#}"),
                    };
                    crate::progress::note(format!(
                        "the trigger's answer was lost ({reason}); listing deploys before retrying, so none is made twice"
                    ));
                    if let Some(found) = self.find_new(service, source, known, &[])? {
                        return Ok(found);
                    }
                    if attempt == self.policy.attempts {
                        bail!(
                            "Render did not accept the deploy after {attempt} attempts (last: {reason}); nothing was deployed"
                        );
                    }
                    self.retries.set(self.retries.get() + 1);
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(self.policy.max_backoff);
                }
            }
        }
        unreachable!("the loop returns or bails on its last attempt")
    }

    fn find_new(
        &self,
        service: &str,
        source: &Source,
        known: &BTreeSet<String>,
        statuses: &[&str],
    ) -> Result<Option<Deploy>> {
        Ok(self
            .deploys(service, statuses, 20)?
            .into_iter()
            .find(|d| !known.contains(&d.id) && d.ships(source)))
    }

    pub fn cancel(&self, service: &str, deploy: &str) -> Result<Deploy> {
        let path = format!("/services/{service}/deploys/{deploy}/cancel");
        let response = self.call("POST", &path, NO_BODY)?;
        if response.status != 200 {
            return Err(api_error("POST", &path, &response));
        }
        Deploy::from_json(&response.json()?)
    }

    pub fn rollback(&self, service: &str, to: &str) -> Result<Deploy> {
        let path = format!("/services/{service}/rollback");
        let response = self.exchange("POST", &path, Some(&RollbackInput { deploy_id: to }))?;
        if !(200..300).contains(&response.status) {
            return Err(api_error("POST", &path, &response));
        }
        Deploy::from_json(&response.json()?)
    }

    /// The last `limit` log lines of the service between a deploy's start and end, oldest first.
    pub fn logs(&self, service: &Service, deploy: &Deploy, limit: u32) -> Result<Vec<String>> {
        let mut path = format!(
            "/logs?ownerId={}&resource={}&direction=backward&limit={limit}",
            service.owner_id, service.id
        );
        if let Some(start) = &deploy.created_at {
            path.push_str(&format!("&startTime={}", percent_encode(start)));
        }
        if let Some(end) = &deploy.finished_at {
            path.push_str(&format!("&endTime={}", percent_encode(end)));
        }
        let value = self.get_json(&path)?;
        let mut lines: Vec<String> = value["logs"]
            .as_array()
            .map(|logs| {
                logs.iter()
                    .map(|l| {
                        format!(
                            "{} {}",
                            l["timestamp"].as_str().unwrap_or_default(),
                            l["message"].as_str().unwrap_or_default()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        // Asked backward (newest first), shown oldest first.
        lines.reverse();
        Ok(lines)
    }
}

/// Triggers a deploy through the service's deploy hook. Its URL holds a credential (`key`), so
/// it only ever appears masked. Returns the deploy id when the hook's answer names one.
pub fn trigger_hook(client: &https::Client, hook_url: &str) -> Result<Option<String>> {
    let response = client.send("POST", hook_url, &[], None)?;
    if !(200..300).contains(&response.status) {
        bail!(
            "the deploy hook {} answered HTTP {}; check RENDER_DEPLOY_HOOK_URL",
            https::mask_query_secret(hook_url),
            response.status
        );
    }
    Ok(response
        .json()
        .ok()
        .and_then(|v| v["deploy"]["id"].as_str().map(str::to_owned)))
}

fn api_error(method: &str, path: &str, response: &Response) -> anyhow::Error {
    let detail = response
        .json()
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| response.text().chars().take(300).collect());
    let hint = match response.status {
        401 | 403 => "; check RENDER_API_KEY (Render dashboard → Account settings → API keys)",
        404 => "; check RENDER_SERVICE_ID",
        _ => "",
    };
    anyhow::Error::new(ApiError {
        status: response.status,
        message: format!(
            "Render API: {method} {path} answered HTTP {}: {}{hint}",
            response.status,
            detail.trim()
        ),
    })
}

#[cfg(test)]
mod tests;
