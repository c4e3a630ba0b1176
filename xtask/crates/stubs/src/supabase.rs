//! A stub of the two APIs remote previews use, for the tests: the Supabase Management API
//! (branches, as supabase/cli's published OpenAPI document describes them: see supabase.rs)
//! under `/v1/…`, and Render's preview-instance endpoints (as render-oss/cli's generated client
//! describes them: see xtask-core's render.rs) under `/render/v1/…`. One HTTP/1.1 server on a random
//! 127.0.0.1 port, driven by a [`Scenario`], journaling every request with its headers.
//!
//! Like render.rs, nothing waits on a clock: a new Supabase branch advances one step of
//! `new_branch_steps` each time its project is retrieved (`GET /v1/branches/{ref}`), and a
//! Render deploy one status each time it is retrieved. A preview service starts with the base
//! service's variables, production's `DATABASE_URL` among them, as Render's do.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use serde_json::{Value, json};

use crate::{Answer, Handler, Journaled, Recorded, Server, authorised, rate_headers};

/// The parent project (20 lower-case letters, as the document's pattern says).
pub const PROJECT_REF: &str = "stubparentprojectref";
/// The production service on Render.
pub const SERVICE_ID: &str = "srv-stubproduction00000";
pub const SERVICE_NAME: &str = "openeu-backend";
pub const IMAGE_PATH: &str = "registry.example/openeu-backend:latest";
/// Production's database URL, which a preview starts with and must not keep.
pub const PRODUCTION_DATABASE_URL: &str =
    "postgres://prod:secret@db.production.example:5432/postgres";

/// A branch that exists when the stub starts.
#[derive(Clone, Debug)]
pub struct SeedBranch {
    pub name: String,
    pub git_branch: Option<String>,
    pub is_default: bool,
    pub created_at: String,
}

/// What the stub does.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub supabase_token: String,
    pub render_key: String,
    /// Off: listing branches answers 422.
    pub branching_enabled: bool,
    pub branches: Vec<SeedBranch>,
    /// (project status, branch status) a new branch shows, one step per retrieval of its
    /// project; the last stays.
    pub new_branch_steps: Vec<(String, String)>,
    /// The first this many Supabase requests get 429 with the X-RateLimit-* headers.
    pub supabase_rate_limited_first: u32,
    /// Image-backed (previews allowed) or Git-backed (the preview endpoint refuses).
    pub image_backed: bool,
    /// Preview services that exist when the stub starts: (name, createdAt).
    pub render_previews: Vec<(String, String)>,
    /// The statuses of a preview's deploy, one per retrieval; the last stays.
    pub deploy_statuses: Vec<String>,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            supabase_token: "sbp_stubtoken".to_owned(),
            render_key: "rnd_stubkey".to_owned(),
            branching_enabled: true,
            branches: vec![SeedBranch {
                name: "main".to_owned(),
                git_branch: Some("main".to_owned()),
                is_default: true,
                created_at: "2025-01-01T00:00:00Z".to_owned(),
            }],
            new_branch_steps: [
                ("COMING_UP", "CREATING_PROJECT"),
                ("COMING_UP", "RUNNING_MIGRATIONS"),
                ("ACTIVE_HEALTHY", "RUNNING_MIGRATIONS"),
                ("ACTIVE_HEALTHY", "MIGRATIONS_PASSED"),
            ]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .to_vec(),
            supabase_rate_limited_first: 0,
            image_backed: true,
            render_previews: Vec::new(),
            deploy_statuses: ["build_in_progress", "update_in_progress", "live"]
                .map(str::to_owned)
                .to_vec(),
        }
    }
}

struct StubBranch {
    json: Value,
    project_status: String,
    steps: Vec<(String, String)>,
}

struct StubDeploy {
    service: String,
    json: Value,
    upcoming: Vec<String>,
}

struct State {
    scenario: Scenario,
    branches: Vec<StubBranch>,
    services: Vec<Value>,
    env: BTreeMap<String, BTreeMap<String, String>>,
    deploys: Vec<StubDeploy>,
    supabase_requests: u32,
    next: u32,
    url: String,
}

/// A running stub; stops when dropped.
pub struct Stub {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    state: Arc<Mutex<Journaled<State>>>,
    _server: Server,
}

fn letters(n: u32) -> String {
    // Twenty lower-case letters from a counter: a project ref's shape.
    let mut text = String::new();
    let mut v = n;
    for _ in 0..20 {
        text.push((b'a' + (v % 26) as u8) as char);
        v /= 26;
    }
    text
}

impl Stub {
    pub fn start(scenario: Scenario) -> std::io::Result<Stub> {
        let mut server = Server::bind()?;
        let url = server.url.clone();
        let mut state = State {
            scenario: scenario.clone(),
            branches: Vec::new(),
            services: Vec::new(),
            env: BTreeMap::new(),
            deploys: Vec::new(),
            supabase_requests: 0,
            next: 1,
            url: url.clone(),
        };
        let mut production = json!({
            "id": SERVICE_ID,
            "name": SERVICE_NAME,
            "ownerId": "tea-stub",
            "type": "web_service",
            "suspended": "not_suspended",
            "createdAt": "2025-01-01T00:00:00Z",
            "serviceDetails": {"url": format!("{url}/app"), "runtime": if scenario.image_backed { "image" } else { "docker" }},
        });
        if scenario.image_backed {
            production["imagePath"] = json!(IMAGE_PATH);
        } else {
            production["repo"] = json!("https://github.com/openeu/openeu-backend");
            production["branch"] = json!("main");
        }
        state.services.push(production);
        state.env.insert(
            SERVICE_ID.to_owned(),
            BTreeMap::from([
                (
                    "DATABASE_URL".to_owned(),
                    PRODUCTION_DATABASE_URL.to_owned(),
                ),
                ("SUPABASE_JWT_SECRET".to_owned(), "stub".to_owned()),
            ]),
        );
        for seed in &scenario.branches {
            let json = state.branch_json(
                &seed.name,
                seed.git_branch.as_deref(),
                seed.is_default,
                &seed.created_at,
                "MIGRATIONS_PASSED",
            );
            state.branches.push(StubBranch {
                json,
                project_status: "ACTIVE_HEALTHY".to_owned(),
                steps: Vec::new(),
            });
        }
        for (name, created) in &scenario.render_previews {
            state.add_preview(name, IMAGE_PATH, created);
        }
        let state = Journaled::new(state);
        server.serve(Arc::clone(&state));
        Ok(Stub {
            url,
            state,
            _server: server,
        })
    }

    /// `SUPABASE_API_URL`.
    pub fn supabase_url(&self) -> String {
        self.url.clone()
    }

    /// `RENDER_API_URL`.
    pub fn render_url(&self) -> String {
        format!("{}/render/v1", self.url)
    }

    pub fn journal(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().journal.clone()
    }

    /// The branches as the list endpoint shows them.
    pub fn branches(&self) -> Vec<Value> {
        let state = self.state.lock().unwrap();
        state.branches.iter().map(|b| b.json.clone()).collect()
    }

    /// Every service, production first.
    pub fn services(&self) -> Vec<Value> {
        self.state.lock().unwrap().services.clone()
    }

    /// A service's env vars.
    pub fn env(&self, service: &str) -> BTreeMap<String, String> {
        let state = self.state.lock().unwrap();
        state.env.get(service).cloned().unwrap_or_default()
    }
}

impl State {
    fn branch_json(
        &mut self,
        name: &str,
        git_branch: Option<&str>,
        is_default: bool,
        created_at: &str,
        status: &str,
    ) -> Value {
        let n = self.next;
        self.next += 1;
        let project_ref = if is_default {
            PROJECT_REF.to_owned()
        } else {
            letters(n * 7919 + 17)
        };
        json!({
            "id": format!("00000000-0000-4000-8000-{n:012}"),
            "name": name,
            "project_ref": project_ref,
            "parent_project_ref": PROJECT_REF,
            "is_default": is_default,
            "git_branch": git_branch,
            "persistent": is_default,
            "status": status,
            "created_at": created_at,
            "updated_at": created_at,
            "with_data": false,
        })
    }

    fn add_preview(&mut self, name: &str, image: &str, created: &str) -> String {
        let id = format!("srv-stubpreview{:08}", self.next);
        self.next += 1;
        self.services.push(json!({
            "id": id,
            "name": name,
            "ownerId": "tea-stub",
            "type": "web_service",
            "suspended": "not_suspended",
            "imagePath": image,
            "createdAt": created,
            "serviceDetails": {
                "url": format!("{}/app/{id}", self.url),
                "runtime": "image",
                "parentServer": {"id": SERVICE_ID, "name": SERVICE_NAME},
            },
        }));
        // A preview starts with the base service's variables.
        let inherited = self.env.get(SERVICE_ID).cloned().unwrap_or_default();
        self.env.insert(id.clone(), inherited);
        id
    }

    fn add_deploy(&mut self, service: &str, image: &str) -> Value {
        let statuses = self.scenario.deploy_statuses.clone();
        let id = format!("dep-stubpreview{:08}", self.next);
        self.next += 1;
        let json = json!({
            "id": id,
            "status": statuses[0],
            "trigger": "api",
            "image": {"ref": image, "sha": "sha256:stub"},
            "createdAt": "2026-11-28T10:00:00Z",
        });
        self.deploys.push(StubDeploy {
            service: service.to_owned(),
            json: json.clone(),
            upcoming: statuses[1..].to_vec(),
        });
        json
    }
}

impl Handler for State {
    fn answer(&mut self, request: &Recorded) -> Answer {
        answer(self, request)
    }
}

fn answer(state: &mut State, request: &Recorded) -> Answer {
    let (method, target, headers, body) = request.parts();
    let (path, _query) = target.split_once('?').unwrap_or((target, ""));
    let body: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    if let Some(rest) = path.strip_prefix("/render/v1/") {
        return render(state, method, rest, headers, &body);
    }
    if let Some(rest) = path.strip_prefix("/v1/") {
        return supabase(state, method, rest, headers, &body);
    }
    (404, Vec::new(), json!({"message": "not found"}).to_string())
}

fn supabase(
    state: &mut State,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &Value,
) -> Answer {
    state.supabase_requests += 1;
    let limited = state.supabase_requests <= state.scenario.supabase_rate_limited_first;
    let remaining = if limited {
        0
    } else {
        120 - state.supabase_requests.min(119)
    };
    let rate = rate_headers("X-RateLimit", 120, remaining, 1);
    if limited {
        return (
            429,
            rate,
            json!({"message": "Too many requests"}).to_string(),
        );
    }
    if !authorised(headers, &state.scenario.supabase_token) {
        return (401, rate, json!({"message": "Unauthorized"}).to_string());
    }
    let segments: Vec<&str> = path.split('/').collect();
    let ok = |status: u16, value: Value| (status, rate.clone(), value.to_string());
    match (method, segments.as_slice()) {
        ("GET", ["projects", project, "branches"]) if *project == PROJECT_REF => {
            if !state.scenario.branching_enabled {
                return ok(
                    422,
                    json!({"message": "Preview branching is not enabled for this project."}),
                );
            }
            ok(
                200,
                Value::Array(state.branches.iter().map(|b| b.json.clone()).collect()),
            )
        }
        ("POST", ["projects", project, "branches"]) if *project == PROJECT_REF => {
            let Some(name) = body["branch_name"].as_str() else {
                return ok(400, json!({"message": "branch_name is required"}));
            };
            let steps = state.scenario.new_branch_steps.clone();
            let (project_status, status) = steps[0].clone();
            let json = state.branch_json(
                name,
                body["git_branch"].as_str(),
                false,
                "2026-11-28T10:00:00Z",
                &status,
            );
            state.branches.push(StubBranch {
                json: json.clone(),
                project_status,
                steps: steps[1..].to_vec(),
            });
            ok(201, json)
        }
        ("GET", ["projects", project, "config", "database", "pooler"])
            if *project == PROJECT_REF =>
        {
            ok(
                200,
                json!([{
                    "identifier": PROJECT_REF, "database_type": "PRIMARY", "is_using_scram_auth": true,
                    "db_user": format!("postgres.{PROJECT_REF}"), "db_host": "aws-0-eu-central-1.pooler.supabase.com",
                    "db_port": 6543, "db_name": "postgres",
                    "connection_string": "postgres://postgres.stub:[YOUR-PASSWORD]@aws-0-eu-central-1.pooler.supabase.com:6543/postgres",
                    "connectionString": "postgres://postgres.stub:[YOUR-PASSWORD]@aws-0-eu-central-1.pooler.supabase.com:6543/postgres",
                    "default_pool_size": 15, "max_client_conn": 200, "pool_mode": "transaction",
                }]),
            )
        }
        ("GET", ["branches", key]) => {
            // By project ref; the deprecated UUID form is answered too, but journaled, so a
            // test can see it is never used.
            let Some(branch) = state
                .branches
                .iter_mut()
                .find(|b| b.json["project_ref"] == *key || b.json["id"] == *key)
            else {
                return ok(404, json!({"message": "branch not found"}));
            };
            let detail = json!({
                "ref": branch.json["project_ref"],
                "postgres_version": "15.8",
                "postgres_engine": "15",
                "release_channel": "ga",
                "status": branch.project_status,
                "db_host": format!("db.{}.supabase.co", branch.json["project_ref"].as_str().unwrap_or_default()),
                "db_port": 5432,
                "db_user": "postgres",
                "db_pass": "branch-password",
            });
            if !branch.steps.is_empty() {
                let (project, status) = branch.steps.remove(0);
                branch.project_status = project;
                branch.json["status"] = json!(status);
            }
            ok(200, detail)
        }
        ("DELETE", ["branches", key]) => {
            let before = state.branches.len();
            state.branches.retain(|b| b.json["project_ref"] != *key);
            if state.branches.len() == before {
                return ok(404, json!({"message": "branch not found"}));
            }
            ok(200, json!({"message": "ok"}))
        }
        _ => ok(404, json!({"message": "not found"})),
    }
}

fn render(
    state: &mut State,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &Value,
) -> Answer {
    let rate = rate_headers("Ratelimit", 400, 399, 1);
    if !authorised(headers, &state.scenario.render_key) {
        return (401, rate, json!({"message": "unauthorized"}).to_string());
    }
    let segments: Vec<&str> = path.split('/').collect();
    let ok = |status: u16, value: Value| (status, rate.clone(), value.to_string());
    let find = |state: &State, id: &str| state.services.iter().position(|s| s["id"] == id);
    match (method, segments.as_slice()) {
        ("GET", ["services"]) => ok(
            200,
            Value::Array(
                state
                    .services
                    .iter()
                    .map(|s| json!({"cursor": s["id"], "service": s}))
                    .collect(),
            ),
        ),
        ("GET", ["services", id]) => match find(state, id) {
            Some(i) => ok(200, state.services[i].clone()),
            None => ok(404, json!({"message": "not found"})),
        },
        ("DELETE", ["services", id]) => match find(state, id) {
            Some(i) => {
                state.services.remove(i);
                state.env.remove(*id);
                (204, rate, String::new())
            }
            None => ok(404, json!({"message": "not found"})),
        },
        ("POST", ["services", id, "preview"]) if *id == SERVICE_ID => {
            if !state.scenario.image_backed {
                return ok(
                    400,
                    json!({"message": "previews can only be created for image-backed services"}),
                );
            }
            let Some(image) = body["imagePath"].as_str() else {
                return ok(400, json!({"message": "imagePath is required"}));
            };
            let name = body["name"].as_str().unwrap_or("preview").to_owned();
            let preview = state.add_preview(&name, image, "2026-11-28T10:00:00Z");
            let deploy = state.add_deploy(&preview, image);
            let service = state.services[find(state, &preview).expect("just added")].clone();
            ok(200, json!({"deployId": deploy["id"], "service": service}))
        }
        ("PUT", ["services", id, "env-vars", key]) if find(state, id).is_some() => {
            let value = body["value"].as_str().unwrap_or_default().to_owned();
            state
                .env
                .entry((*id).to_owned())
                .or_default()
                .insert((*key).to_owned(), value.clone());
            ok(200, json!({"key": key, "value": value}))
        }
        ("DELETE", ["services", id, "env-vars", key]) => {
            match state.env.get_mut(*id).and_then(|e| e.remove(*key)) {
                Some(_) => (204, rate, String::new()),
                None => ok(404, json!({"message": "not found"})),
            }
        }
        ("GET", ["services", id, "deploys"]) => ok(
            200,
            Value::Array(
                state
                    .deploys
                    .iter()
                    .rev()
                    .filter(|d| d.service == *id)
                    .map(|d| json!({"cursor": d.json["id"], "deploy": d.json}))
                    .collect(),
            ),
        ),
        ("POST", ["services", id, "deploys"]) if find(state, id).is_some() => {
            let image = body["imageUrl"].as_str().unwrap_or(IMAGE_PATH).to_owned();
            let deploy = state.add_deploy(id, &image);
            ok(201, deploy)
        }
        ("GET", ["services", id, "deploys", deploy]) => {
            match state
                .deploys
                .iter_mut()
                .find(|d| d.service == *id && d.json["id"] == *deploy)
            {
                Some(d) => {
                    let current = d.json.clone();
                    if !d.upcoming.is_empty() {
                        d.json["status"] = json!(d.upcoming.remove(0));
                    }
                    ok(200, current)
                }
                None => ok(404, json!({"message": "not found"})),
            }
        }
        ("POST", ["services", id, "deploys", deploy, "cancel"]) => {
            match state
                .deploys
                .iter_mut()
                .find(|d| d.service == *id && d.json["id"] == *deploy)
            {
                Some(d) => {
                    d.json["status"] = json!("canceled");
                    d.upcoming.clear();
                    ok(200, d.json.clone())
                }
                None => ok(404, json!({"message": "not found"})),
            }
        }
        _ => ok(404, json!({"message": "not found"})),
    }
}
