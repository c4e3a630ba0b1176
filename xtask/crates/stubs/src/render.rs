//! A stub of Render's REST API (and of a deploy hook) for the tests and `bench deploy`: an
//! HTTP/1.1 server on a random 127.0.0.1 port that answers in the shapes of Render's published
//! API (see xtask-core's render.rs for where each comes from), driven by a [`Scenario`], and journaling every
//! request with its headers so tests can check what xtask sent.
//!
//! Deploys advance one status each time they are retrieved, so a scenario is deterministic and
//! never waits on a clock. With no real service given, the stub also answers `/health`,
//! `/ready` and `/` itself, as the deployed app would, reporting the live deploy's version.

use std::{
    sync::{Arc, Mutex},
    time::Instant,
};

use serde_json::{Value, json};

use crate::{Answer, Handler, Journaled, Recorded, Server, authorised, rate_headers};

pub const SERVICE_ID: &str = "srv-stub0000000000000000";
pub const OWNER_ID: &str = "tea-stub0000000000000000";

/// What the stub does.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The API key it accepts (`Authorization: Bearer <key>`); others get 401.
    pub api_key: String,
    /// Image-backed (with this `imagePath`) or Git-backed.
    pub image_path: Option<String>,
    pub suspended: bool,
    /// `serviceDetails.url`; `None`: the stub itself plays the app.
    pub service_url: Option<String>,
    /// Names of the service's env vars.
    pub env_vars: Vec<String>,
    /// The statuses a new deploy goes through, one per retrieval; the last one stays.
    pub statuses: Vec<String>,
    /// The first this many requests get 429.
    pub rate_limited_first: u32,
    /// `Ratelimit-Reset` as a Unix time instead of seconds.
    pub reset_as_timestamp: bool,
    /// Every n-th request (n > 0) gets 502 (after doing nothing).
    pub fail_every: u32,
    /// The first trigger creates the deploy but its answer is a 502.
    pub lose_trigger_answer: bool,
    /// The trigger answers 202 with an empty body (queued behind another deploy).
    pub trigger_queued: bool,
    /// A deploy already in progress when the scenario starts: retrievals until it is live.
    pub running_deploy: Option<u32>,
    /// What the stub's app reports at `/` (`version`); `None`: the live deploy's version.
    pub app_version: Option<String>,
    /// The version a deploy of an image reports (image deploys carry no commit).
    pub image_version: String,
    /// Called with a new deploy when it turns live, before the answer that says so: a test
    /// starts the real container of the deployed image here, as Render would.
    pub on_live: Option<OnLive>,
    /// Env vars with their values, set on the service besides `env_vars` (whose values are
    /// well-formed stand-ins, see [`well_formed`]); a name in both takes the value given here.
    pub env_values: Vec<(String, String)>,
    /// A commit whose deploy (trigger `new_commit`) Render starts as a deploy turns
    /// `canceled`: an auto-deploy of a newer push that overrides the one in progress.
    pub overridden_by: Option<String>,
}

/// A callback for [`Scenario::on_live`].
#[derive(Clone)]
pub struct OnLive(pub Arc<dyn Fn(&Value) + Send + Sync>);

impl std::fmt::Debug for OnLive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnLive")
    }
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            api_key: "rnd_stub".to_owned(),
            image_path: None,
            suspended: false,
            service_url: None,
            env_vars: openeu_env::SPEC
                .iter()
                .filter(|v| {
                    v.readers.contains(&openeu_env::Reader::Service)
                        && v.required_in.contains(&openeu_env::Target::Production)
                })
                .map(|v| v.name.to_owned())
                .collect(),
            statuses: ["build_in_progress", "update_in_progress", "live"]
                .map(str::to_owned)
                .to_vec(),
            rate_limited_first: 0,
            reset_as_timestamp: false,
            fail_every: 0,
            lose_trigger_answer: false,
            trigger_queued: false,
            running_deploy: None,
            app_version: None,
            image_version: String::new(),
            on_live: None,
            env_values: Vec::new(),
            overridden_by: None,
        }
    }
}

struct StubDeploy {
    json: Value,
    /// Statuses still to come.
    upcoming: Vec<String>,
    version: String,
}

struct State {
    scenario: Scenario,
    deploys: Vec<StubDeploy>,
    requests: u32,
    triggers: u32,
    next_id: u32,
    /// When each deploy turned live (for the benchmark's noticing delay).
    live_at: Vec<(String, Instant)>,
    /// The service's env vars, sorted by name (the order the list pages in); changed by the
    /// env var writes.
    env: std::collections::BTreeMap<String, String>,
}

/// A running stub; stops when dropped.
pub struct Stub {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    state: Arc<Mutex<Journaled<State>>>,
    _server: Server,
}

/// A value in the env spec's format for `name` (its example, or a stand-in URL), so a scenario's
/// service holds well-formed variables unless a test says otherwise.
pub fn well_formed(name: &str) -> String {
    let candidates = [
        openeu_env::var(name).map_or("", |v| v.example),
        "postgresql://postgres:stub-password@db.stub.invalid:5432/postgres",
        "https://stub.invalid",
        "stub-value",
    ];
    candidates
        .into_iter()
        .find(|c| !c.is_empty() && openeu_env::var(name).is_none_or(|v| v.format.check(c).is_ok()))
        .unwrap_or("stub-value")
        .to_owned()
}

impl Stub {
    pub fn start(scenario: Scenario) -> std::io::Result<Stub> {
        let mut server = Server::bind()?;
        let mut env: std::collections::BTreeMap<String, String> = scenario
            .env_vars
            .iter()
            .map(|k| (k.clone(), well_formed(k)))
            .collect();
        env.extend(scenario.env_values.iter().cloned());
        let mut state = State {
            env,
            scenario,
            deploys: Vec::new(),
            requests: 0,
            triggers: 0,
            next_id: 1,
            live_at: Vec::new(),
        };
        // History: an older live deploy (the rollback target) and the current live one.
        state.add_deploy(
            &["deactivated".to_owned()],
            "0000000000000000000000000000000000000001",
            "manual",
        );
        state.add_deploy(
            &["live".to_owned()],
            "0000000000000000000000000000000000000002",
            "manual",
        );
        if let Some(polls) = state.scenario.running_deploy {
            let mut statuses = vec!["build_in_progress".to_owned(); polls as usize];
            statuses.push("live".to_owned());
            state.add_deploy(
                &statuses,
                "0000000000000000000000000000000000000003",
                "new_commit",
            );
        }
        let state = Journaled::new(state);
        server.serve(Arc::clone(&state));
        Ok(Stub {
            url: server.url.clone(),
            state,
            _server: server,
        })
    }

    /// The API base URL to give xtask as `RENDER_API_URL`.
    pub fn api_url(&self) -> String {
        format!("{}/v1", self.url)
    }

    /// The deploy hook URL, with its credential in `key`, as Render's.
    pub fn hook_url(&self, key: &str) -> String {
        format!("{}/deploy/{SERVICE_ID}?key={key}", self.url)
    }

    pub fn journal(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().journal.clone()
    }

    /// The deploys, newest first, as the API lists them.
    pub fn deploys(&self) -> Vec<Value> {
        let state = self.state.lock().unwrap();
        state.deploys.iter().rev().map(|d| d.json.clone()).collect()
    }

    /// The service's env vars now, with their values.
    pub fn env_vars(&self) -> std::collections::BTreeMap<String, String> {
        self.state.lock().unwrap().env.clone()
    }

    pub fn triggers(&self) -> u32 {
        self.state.lock().unwrap().triggers
    }

    /// When each deploy turned live, relative to the stub's start.
    pub fn live_at(&self) -> Vec<(String, std::time::Duration)> {
        let state = self.state.lock().unwrap();
        state
            .live_at
            .iter()
            .map(|(id, at)| (id.clone(), at.duration_since(state.started)))
            .collect()
    }

    pub fn started(&self) -> Instant {
        self.state.lock().unwrap().started
    }

    /// Changes the scenario while running (e.g. what the app reports).
    pub fn update(&self, f: impl FnOnce(&mut Scenario)) {
        f(&mut self.state.lock().unwrap().scenario);
    }
}

impl State {
    fn add_deploy(&mut self, statuses: &[String], commit: &str, trigger: &str) -> usize {
        let id = format!("dep-stub{:016}", self.next_id);
        self.next_id += 1;
        let json = json!({
            "id": id,
            "commit": {"id": commit, "message": "stub commit", "createdAt": "2026-11-28T10:00:00Z"},
            "status": statuses[0],
            "trigger": trigger,
            "createdAt": format!("2026-11-28T10:{:02}:00Z", self.next_id % 60),
            "updatedAt": "2026-11-28T10:00:00Z",
            "finishedAt": if statuses[0] == "live" || statuses[0] == "deactivated" { json!("2026-11-28T10:05:00Z") } else { Value::Null },
        });
        self.deploys.push(StubDeploy {
            json,
            upcoming: statuses[1..].to_vec(),
            version: commit[..12].to_owned(),
        });
        self.deploys.len() - 1
    }

    fn new_deploy(&mut self, body: &Value, trigger: &str) -> usize {
        let statuses = self.scenario.statuses.clone();
        let index = if let Some(url) = body["imageUrl"].as_str() {
            let index = self.add_deploy(
                &statuses,
                "0000000000000000000000000000000000000000",
                trigger,
            );
            let deploy = &mut self.deploys[index];
            deploy.json["commit"] = Value::Null;
            let sha = url.split('@').nth(1).unwrap_or_default();
            deploy.json["image"] = json!({"ref": url, "sha": sha});
            deploy.version.clone_from(&self.scenario.image_version);
            index
        } else {
            let commit = body["commitId"]
                .as_str()
                .unwrap_or("ffffffffffffffffffffffffffffffffffffffff");
            self.add_deploy(&statuses, commit, trigger)
        };
        self.settle(index);
        index
    }

    /// A deploy that reached `live` deactivates the previous live one.
    fn settle(&mut self, index: usize) {
        if self.deploys[index].json["status"] == "live" {
            if let Some(OnLive(callback)) = &self.scenario.on_live {
                callback(&self.deploys[index].json);
            }
            let id = self.deploys[index].json["id"].clone();
            self.live_at
                .push((id.as_str().unwrap_or_default().to_owned(), Instant::now()));
            for (i, other) in self.deploys.iter_mut().enumerate() {
                if i != index && other.json["status"] == "live" {
                    other.json["status"] = json!("deactivated");
                }
            }
            self.deploys[index].json["finishedAt"] = json!("2026-11-28T10:09:00Z");
        } else if self.deploys[index].json["status"]
            .as_str()
            .is_some_and(|s| s.ends_with("failed") || s == "canceled")
        {
            self.deploys[index].json["finishedAt"] = json!("2026-11-28T10:09:00Z");
            if self.deploys[index].json["status"] == "canceled"
                && let Some(commit) = self.scenario.overridden_by.take()
            {
                self.add_deploy(&["build_in_progress".to_owned()], &commit, "new_commit");
            }
        }
    }

    fn advance(&mut self, index: usize) {
        if !self.deploys[index].upcoming.is_empty() {
            let next = self.deploys[index].upcoming.remove(0);
            self.deploys[index].json["status"] = json!(next);
            self.settle(index);
        }
    }

    fn find(&self, id: &str) -> Option<usize> {
        self.deploys.iter().position(|d| d.json["id"] == id)
    }

    fn live_version(&self) -> String {
        self.deploys
            .iter()
            .find(|d| d.json["status"] == "live")
            .map(|d| d.version.clone())
            .unwrap_or_default()
    }
}

impl Handler for State {
    fn answer(&mut self, request: &Recorded) -> Answer {
        answer(self, request)
    }
}

fn answer(state: &mut State, request: &Recorded) -> Answer {
    let (method, target, headers, body) = request.parts();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    // The app's endpoints, when the stub plays the deployed service.
    if !path.starts_with("/v1/") && !path.starts_with("/deploy/") {
        let version = state
            .scenario
            .app_version
            .clone()
            .unwrap_or_else(|| state.live_version());
        return match path {
            "/health" => (200, Vec::new(), json!({"status": "ok"}).to_string()),
            "/ready" => (200, Vec::new(), json!({"status": "ready"}).to_string()),
            "/" => (200, Vec::new(), json!({"version": version}).to_string()),
            _ => (404, Vec::new(), json!({"error": "not_found"}).to_string()),
        };
    }
    state.requests += 1;
    let remaining = 400u32.saturating_sub(state.requests % 400);
    let reset = if state.scenario.reset_as_timestamp {
        xtask_core::time::now() + 1
    } else {
        1
    };
    let rate_headers = rate_headers("Ratelimit", 400, remaining, reset);
    if state.requests <= state.scenario.rate_limited_first {
        let mut headers = rate_headers;
        headers[1].1 = "0".to_owned();
        return (
            429,
            headers,
            json!({"message": "rate limit exceeded"}).to_string(),
        );
    }
    if state.scenario.fail_every > 0 && state.requests.is_multiple_of(state.scenario.fail_every) {
        return (502, rate_headers, "<html>502 Bad Gateway</html>".to_owned());
    }
    if let Some(rest) = path.strip_prefix("/deploy/") {
        // A deploy hook: its credential is the `key` query parameter.
        if rest != SERVICE_ID || !query.contains("key=") {
            return (404, Vec::new(), String::new());
        }
        state.triggers += 1;
        // An image-backed service's hook deploys `imgURL`, else the configured image.
        let image = query
            .split('&')
            .find_map(|p| p.strip_prefix("imgURL="))
            .map(openeu_env::percent_decode)
            .or_else(|| state.scenario.image_path.clone());
        let body = image.map_or_else(|| json!({}), |url| json!({ "imageUrl": url }));
        let index = state.new_deploy(&body, "deploy_hook");
        let id = state.deploys[index].json["id"].clone();
        return (200, Vec::new(), json!({"deploy": {"id": id}}).to_string());
    }
    if !authorised(headers, &state.scenario.api_key) {
        return (
            401,
            rate_headers,
            json!({"message": "unauthorized"}).to_string(),
        );
    }
    let segments: Vec<&str> = path.trim_start_matches("/v1/").split('/').collect();
    let ok = |value: Value| (200, rate_headers.clone(), value.to_string());
    let not_found = || {
        (
            404,
            rate_headers.clone(),
            json!({"message": "not found"}).to_string(),
        )
    };
    let body: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let bad_request = |why: &str| {
        (
            400,
            rate_headers.clone(),
            json!({ "message": why }).to_string(),
        )
    };
    match (method, segments.as_slice()) {
        ("GET", ["services", id]) if *id == SERVICE_ID => {
            let url = state
                .scenario
                .service_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", host(headers)));
            let mut service = json!({
                "id": SERVICE_ID,
                "name": "openeu-backend",
                "ownerId": OWNER_ID,
                "type": "web_service",
                "suspended": if state.scenario.suspended { "suspended" } else { "not_suspended" },
                "dashboardUrl": format!("https://dashboard.render.com/web/{SERVICE_ID}"),
                "serviceDetails": {"url": url, "runtime": if state.scenario.image_path.is_some() { "image" } else { "docker" }},
            });
            match &state.scenario.image_path {
                Some(image) => service["imagePath"] = json!(image),
                None => {
                    service["repo"] = json!("https://github.com/openeu/openeu-backend");
                    service["branch"] = json!("main");
                }
            }
            ok(service)
        }
        ("GET", ["services", id, "env-vars"]) if *id == SERVICE_ID => {
            // Cursor pagination: the page after the item whose cursor is given, `limit` long.
            let param = |name: &str| {
                query
                    .split('&')
                    .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
            };
            let limit: usize = param("limit").and_then(|l| l.parse().ok()).unwrap_or(20);
            let after = param("cursor");
            ok(Value::Array(
                state
                    .env
                    .iter()
                    .filter(|(k, _)| after.is_none_or(|c| k.as_str() > c))
                    .take(limit)
                    .map(|(k, v)| json!({"cursor": k, "envVar": {"key": k, "value": v}}))
                    .collect(),
            ))
        }
        ("GET", ["services", id, "deploys"]) if *id == SERVICE_ID => {
            let statuses: Vec<&str> = query
                .split('&')
                .filter_map(|p| p.strip_prefix("status="))
                .collect();
            let limit: usize = query
                .split('&')
                .find_map(|p| p.strip_prefix("limit="))
                .and_then(|l| l.parse().ok())
                .unwrap_or(20);
            ok(Value::Array(
                state
                    .deploys
                    .iter()
                    .rev()
                    .filter(|d| {
                        statuses.is_empty()
                            || statuses.contains(&d.json["status"].as_str().unwrap_or_default())
                    })
                    .take(limit)
                    .map(|d| json!({"cursor": d.json["id"], "deploy": d.json}))
                    .collect(),
            ))
        }
        ("POST", ["services", id, "deploys"]) if *id == SERVICE_ID => {
            state.triggers += 1;
            let index = state.new_deploy(&body, "api");
            if state.scenario.lose_trigger_answer && state.triggers == 1 {
                return (502, rate_headers, "<html>502 Bad Gateway</html>".to_owned());
            }
            if state.scenario.trigger_queued {
                state.deploys[index].json["status"] = json!("queued");
                return (202, rate_headers, String::new());
            }
            (201, rate_headers, state.deploys[index].json.to_string())
        }
        ("GET", ["services", id, "deploys", deploy]) if *id == SERVICE_ID => {
            match state.find(deploy) {
                Some(index) => {
                    let current = state.deploys[index].json.clone();
                    state.advance(index);
                    ok(current)
                }
                None => not_found(),
            }
        }
        ("POST", ["services", id, "deploys", deploy, "cancel"]) if *id == SERVICE_ID => {
            match state.find(deploy) {
                Some(index) => {
                    state.deploys[index].json["status"] = json!("canceled");
                    state.deploys[index].upcoming.clear();
                    state.settle(index);
                    ok(state.deploys[index].json.clone())
                }
                None => not_found(),
            }
        }
        ("POST", ["services", id, "rollback"]) if *id == SERVICE_ID => {
            let Some(target) = body["deployId"].as_str().and_then(|d| state.find(d)) else {
                return not_found();
            };
            let commit = state.deploys[target].json["commit"]["id"]
                .as_str()
                .unwrap_or("0000000000000000000000000000000000000000")
                .to_owned();
            let image = state.deploys[target].json["image"].clone();
            let version = state.deploys[target].version.clone();
            let index = state.add_deploy(
                &["update_in_progress".to_owned(), "live".to_owned()],
                &commit,
                "rollback",
            );
            state.deploys[index].json["image"] = image;
            state.deploys[index].version = version;
            // A rollback serves the old version again, whatever the app pinned before.
            state.scenario.app_version = None;
            (201, rate_headers, state.deploys[index].json.to_string())
        }
        ("PUT", ["services", id, "env-vars"]) if *id == SERVICE_ID => {
            // UpdateEnvVarsForService: the list replaces every variable of the service.
            let Some(items) = body.as_array() else {
                return bad_request("the body must be an array of {key, value}");
            };
            let mut env = std::collections::BTreeMap::new();
            for item in items {
                match (item["key"].as_str(), item["value"].as_str()) {
                    (Some(key), Some(value)) if !key.is_empty() => {
                        env.insert(key.to_owned(), value.to_owned());
                    }
                    _ => return bad_request("each item must be {key, value}"),
                }
            }
            state.env = env;
            ok(Value::Array(
                state
                    .env
                    .iter()
                    .map(|(k, v)| json!({"cursor": k, "envVar": {"key": k, "value": v}}))
                    .collect(),
            ))
        }
        ("GET", ["services", id, "env-vars", key]) if *id == SERVICE_ID => {
            match state.env.get(*key) {
                Some(value) => ok(json!({"key": key, "value": value})),
                None => not_found(),
            }
        }
        ("PUT", ["services", id, "env-vars", key]) if *id == SERVICE_ID => {
            let Some(value) = body["value"].as_str() else {
                return bad_request("the body must be {value}");
            };
            state.env.insert((*key).to_owned(), value.to_owned());
            ok(json!({"key": key, "value": value}))
        }
        ("DELETE", ["services", id, "env-vars", key]) if *id == SERVICE_ID => {
            match state.env.remove(*key) {
                Some(_) => (204, rate_headers, String::new()),
                None => not_found(),
            }
        }
        ("GET", ["logs"]) => ok(json!({
            "hasMore": true,
            // Backward: the newest first, at most `limit`.
            "logs": (1..=60).rev().take(
                query
                    .split('&')
                    .find_map(|p| p.strip_prefix("limit="))
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(100),
            ).map(|i| json!({
                "id": format!("log-{i}"),
                "labels": [{"name": "type", "value": "build"}],
                "message": format!("stub build log line {i}"),
                "timestamp": "2026-11-28T10:01:00Z",
            })).collect::<Vec<_>>(),
            "nextStartTime": "2026-11-28T10:00:00Z",
            "nextEndTime": "2026-11-28T10:00:00Z",
        })),
        _ => not_found(),
    }
}

fn host(headers: &[(String, String)]) -> String {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}
