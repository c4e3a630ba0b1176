//! The HTTP API: routes and handlers. Postgres renders each result as
//! JSON, so a handler validates parameters, runs one parameterised statement and passes the
//! text on. Every error is an [`ApiError`] (src/error.rs).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use axum::{
    Router,
    extract::{DefaultBodyLimit, Path, RawQuery, Request, State},
    http::{HeaderMap, HeaderValue, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{MethodRouter, get},
};
use serde::Deserialize;
use serde_json::json;

use crate::{
    EXPECTED_MIGRATION, VERSION, auth,
    config::Config,
    db::{self, Db, Migration},
    error::ApiError,
    log,
    params::{BadParameter, Params},
};

/// The longest a request may take before it gets a 503.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// GET endpoints take no body; anything larger than this is refused early.
const BODY_LIMIT: usize = 16 * 1024;
const MAX_LIMIT: i64 = 500;
const MAX_OFFSET: i64 = 100_000;
const SOURCES: &[&str] = &[
    "european_parliament",
    "mep",
    "council",
    "commission",
    "national_parliament",
];
const FILE_STATUSES: &[&str] = &[
    "preparatory",
    "awaiting_committee",
    "awaiting_plenary",
    "awaiting_council",
    "in_trilogue",
    "adopted",
    "withdrawn",
    "rejected",
];

/// What every handler shares: the pool and what `/` reports about the deployment.
pub struct AppState {
    db: Db,
    jwt_secret: Vec<u8>,
    environment: &'static str,
    git_branch: Option<String>,
    is_pull_request: bool,
}

impl AppState {
    /// The state of a service configured by `config` and reading `db`.
    pub fn new(config: &Config, db: Db) -> AppState {
        AppState {
            db,
            jwt_secret: config.jwt_secret.clone(),
            environment: config.target.name(),
            git_branch: config.git_branch.clone(),
            is_pull_request: config.is_pull_request,
        }
    }
}

/// The API's contract, served at `GET /openapi.json`: openapi.json at the repository root,
/// hand-written and compiled in. tests/openapi.rs proves that it names every route and every
/// query parameter of this router, and nothing else.
pub const OPENAPI: &str = include_str!("../../../openapi.json");

/// Every route of the API (axum's path syntax) with its handler.
fn routes() -> Vec<(&'static str, MethodRouter<Arc<AppState>>)> {
    vec![
        ("/health", get(health)),
        ("/ready", get(ready)),
        ("/", get(root)),
        ("/openapi.json", get(openapi)),
        ("/meetings", get(meetings)),
        ("/meetings/{id}", get(meeting)),
        ("/legislative-files", get(legislative_files)),
        ("/legislative-files/{*id}", get(legislative_file)),
        ("/countries", get(countries)),
        ("/topics", get(topics)),
        ("/profile", get(profile)),
    ]
}

/// The paths of every route, in axum's syntax (`/meetings/{id}`, `/legislative-files/{*id}`).
pub fn route_paths() -> Vec<&'static str> {
    routes().into_iter().map(|(path, _)| path).collect()
}

/// Every route of the API, with the request deadline, the body limit and the request log.
pub fn router(state: AppState) -> Router {
    routes()
        .into_iter()
        .fold(Router::new(), |router, (path, route)| {
            router.route(path, route)
        })
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(observe))
        .with_state(Arc::new(state))
}

/// A JSON body that is already text (rendered by Postgres or by us).
fn json_text(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

type ApiResult = Result<Response, ApiError>;

/// Request id, latency, the request deadline and one log line per request.
async fn observe(request: Request, next: Next) -> Response {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let started = Instant::now();
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .map_or_else(
            || {
                let boot = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs();
                format!("{boot:x}-{:x}", NEXT_ID.fetch_add(1, Ordering::Relaxed))
            },
            str::to_owned,
        );
    let method = request.method().to_string();
    // The path only: query strings are user input and stay out of the logs.
    let path = request.uri().path().to_owned();
    let mut response = match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::timeout().into_response(),
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    log::info(
        "request",
        json!({
            "request_id": request_id,
            "method": method,
            "path": path,
            "status": response.status().as_u16(),
            "latency_ms": started.elapsed().as_secs_f64() * 1000.0,
        }),
    );
    response
}

async fn openapi() -> Response {
    json_text(OPENAPI.to_owned())
}

async fn health() -> Response {
    json_text(r#"{"status":"ok"}"#.to_owned())
}

/// 200 when the database's newest migration is the one this build expects or a newer one (an
/// expand-first migration applied before the new code is deployed), 503 when it is behind, has
/// no history or cannot be reached.
async fn ready(State(state): State<Arc<AppState>>) -> ApiResult {
    let actual = match state.db.migration().await {
        Ok(actual) => actual,
        Err(db::Error::Query(_)) => {
            return Err(ApiError::not_ready(
                "the schema has no migration history; apply supabase/migrations",
            )
            .with_fields(migrations(None)));
        }
        Err(err) => return Err(ApiError::not_ready(err.to_string()).with_fields(migrations(None))),
    };
    match &actual {
        Some(found) if found.reaches(EXPECTED_MIGRATION) => Ok(json_text(
            json!({ "status": "ready", "migration": found.as_str(), "expected_migration": EXPECTED_MIGRATION })
                .to_string(),
        )),
        _ => Err(ApiError::not_ready(format!(
            "the schema is at migration {}, the service expects {EXPECTED_MIGRATION} or later",
            actual.as_ref().map_or("none", Migration::as_str),
        ))
        .with_fields(migrations(actual.as_ref()))),
    }
}

/// The migration fields of `/` and `/ready`: the newest applied (null when unknown) and the one
/// this build expects.
fn migrations(actual: Option<&Migration>) -> serde_json::Value {
    json!({
        "migration": actual.map(Migration::as_str),
        "expected_migration": EXPECTED_MIGRATION,
    })
}

async fn root(State(state): State<Arc<AppState>>) -> Response {
    // `/` answers even without a database: the migration is then null.
    let actual = state.db.migration().await.ok().flatten();
    let mut body = json!({
        "service": "openeu-api",
        "version": VERSION,
        "environment": state.environment,
        "git_branch": state.git_branch,
        "is_pull_request": state.is_pull_request,
        "database_host": state.db.host(),
    });
    if let (Some(body), serde_json::Value::Object(fields)) =
        (body.as_object_mut(), migrations(actual.as_ref()))
    {
        body.extend(fields);
    }
    json_text(body.to_string())
}

/// The keyset cursor of /meetings, as rendered by src/sql/meetings.sql: base64url of the last
/// item's start time and id.
#[derive(Deserialize)]
struct Cursor {
    t: String,
    id: String,
}

fn decode_cursor(text: &str) -> Result<Cursor, BadParameter> {
    let invalid = || BadParameter("`cursor` is not a cursor this API returned".to_owned());
    let bytes = crate::auth::base64url_decode(text).ok_or_else(invalid)?;
    let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if !openeu_env::is_timestamp(&cursor.t) || cursor.id.len() > 200 {
        return Err(invalid());
    }
    Ok(cursor)
}

async fn meetings(State(state): State<Arc<AppState>>, RawQuery(query): RawQuery) -> ApiResult {
    let params = Params::parse(
        query.as_deref(),
        &[
            "start", "end", "country", "source", "topic", "q", "limit", "offset", "cursor",
        ],
    )?;
    let limit = params.integer("limit", 50, 1, MAX_LIMIT)?;
    let offset = params.integer("offset", 0, 0, MAX_OFFSET)?;
    let cursor = params.get("cursor").map(decode_cursor).transpose()?;
    if cursor.is_some() && offset > 0 {
        return Err(ApiError::bad_request(
            "give either `cursor` or `offset`, not both",
        ));
    }
    let filter = db::MeetingFilter {
        start: params.timestamp("start")?,
        end: params.timestamp("end")?,
        country: params.code("country", 2, "an ISO 3166-1 alpha-2 code such as DE, or EU")?,
        source: params.one_of("source", SOURCES)?,
        topic: params.text("topic", 100)?,
        q: params.text("q", 200)?,
        after: cursor.as_ref().map(|c| (c.t.as_str(), c.id.as_str())),
        limit,
        offset,
    };
    if let (Some(start), Some(end)) = (filter.start, filter.end)
        && !state.db.starts_before(start, end).await?
    {
        return Err(ApiError::bad_request("`start` must be before `end`"));
    }
    Ok(json_text(state.db.meetings(&filter).await?))
}

async fn meeting(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult {
    if id.len() > 200 {
        return Err(ApiError::bad_request("the meeting id is too long"));
    }
    match state.db.meeting(&id).await? {
        Some(text) => Ok(json_text(text)),
        None => Err(ApiError::not_found(format!("no meeting with id {id:?}"))),
    }
}

async fn legislative_files(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
) -> ApiResult {
    let params = Params::parse(
        query.as_deref(),
        &["q", "status", "committee", "year", "limit", "offset"],
    )?;
    let year = match params.get("year") {
        None => None,
        Some(_) => Some(params.integer("year", 0, 1950, 2100)?),
    };
    let filter = db::FileFilter {
        q: params.text("q", 200)?,
        status: params.one_of("status", FILE_STATUSES)?,
        committee: params.code("committee", 4, "a committee code such as ENVI")?,
        year,
        limit: params.integer("limit", 50, 1, MAX_LIMIT)?,
        offset: params.integer("offset", 0, 0, MAX_OFFSET)?,
    };
    Ok(json_text(state.db.legislative_files(&filter).await?))
}

async fn legislative_file(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult {
    if id.len() > 40 {
        return Err(ApiError::bad_request("the procedure reference is too long"));
    }
    match state.db.legislative_file(&id).await? {
        Some(text) => Ok(json_text(text)),
        None => Err(ApiError::not_found(format!("no legislative file {id:?}"))),
    }
}

async fn countries(State(state): State<Arc<AppState>>) -> ApiResult {
    Ok(json_text(state.db.countries().await?))
}

async fn topics(State(state): State<Arc<AppState>>) -> ApiResult {
    Ok(json_text(state.db.topics().await?))
}

async fn profile(State(state): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let user = auth::verify(authorization, &state.jwt_secret, now)
        .map_err(|r| ApiError::unauthorized(&r))?;
    match state.db.profile(&user).await? {
        Some(text) => Ok(json_text(text)),
        None => Err(ApiError::not_found("this user has no profile yet")),
    }
}
