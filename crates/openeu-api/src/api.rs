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
    extract::{DefaultBodyLimit, FromRequestParts, Path, RawQuery, Request, State},
    http::{HeaderValue, header, request::Parts},
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
/// The longest URI (path and query) the API reads; every valid request fits in far less.
const MAX_URI_BYTES: usize = 8 * 1024;
/// How long `/ready` and `/` wait for the database: a readiness probe must fail fast when the
/// database hangs (Render's health checks time out), not wait for the query deadline.
const PROBE_DEADLINE: Duration = Duration::from_millis(800);
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
    let started = Instant::now();
    // A caller's request id is echoed only when it is one the contract allows; any other value
    // is refused (a 400 under an id of ours), so logs never carry a caller's arbitrary bytes.
    let given = request.headers().get("x-request-id").map(|v| {
        v.to_str()
            .ok()
            .filter(|v| is_request_id(v))
            .map(str::to_owned)
    });
    let request_id = match &given {
        Some(Some(id)) => id.clone(),
        _ => new_request_id(),
    };
    let method = request.method().to_string();
    // The path only: query strings are user input and stay out of the logs.
    let path = request.uri().path().to_owned();
    let uri = request.uri();
    let uri_bytes = uri.path().len() + uri.query().map_or(0, |q| q.len() + 1);
    let mut response = if uri_bytes > MAX_URI_BYTES {
        ApiError::uri_too_long(MAX_URI_BYTES).into_response()
    } else if let Some(None) = given {
        ApiError::bad_request(
            "`X-Request-Id` must be 1-64 characters of letters, digits, `-`, `_` and `.`",
        )
        .into_response()
    } else {
        match tokio::time::timeout(REQUEST_TIMEOUT, guard_panics(next.run(request))).await {
            Ok(response) => response,
            Err(_) => ApiError::timeout().into_response(),
        }
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

/// A request id of ours: the process's start second and a counter, both in hex.
pub(crate) fn new_request_id() -> String {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    static BOOT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let boot = BOOT.get_or_init(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
    });
    format!("{boot:x}-{:x}", NEXT_ID.fetch_add(1, Ordering::Relaxed))
}

/// What the contract allows in `X-Request-Id`.
fn is_request_id(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 64
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Runs a handler so that a panic in it answers 500 with the JSON error body, and the server
/// (one task per connection) keeps serving every other request.
async fn guard_panics(handler: impl Future<Output = Response>) -> Response {
    match futures_util::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(handler)).await {
        Ok(response) => response,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            log::error("handler panicked", json!({ "panic": what }));
            ApiError::internal().into_response()
        }
    }
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
    let Ok(answer) = tokio::time::timeout(PROBE_DEADLINE, state.db.migration()).await else {
        return Err(ApiError::not_ready(format!(
            "the database did not answer within {} ms",
            PROBE_DEADLINE.as_millis()
        ))
        .with_fields(migrations(None)));
    };
    let actual = match answer {
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
    let actual = tokio::time::timeout(PROBE_DEADLINE, state.db.migration())
        .await
        .ok()
        .and_then(Result::ok)
        .flatten();
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
    if !openeu_env::is_timestamp(&cursor.t)
        || cursor.id.chars().count() > 200
        || !storable(&cursor.id)
    {
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

/// A path parameter, percent-decoded; a path that is not UTF-8 gets the API's JSON 400 rather
/// than axum's plain-text one.
struct PathId(String);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(id)) => Ok(PathId(id)),
            Err(_) => Err(ApiError::bad_request(
                "the path is not valid percent-encoded UTF-8",
            )),
        }
    }
}

/// Whether `id` could be stored at all: PostgreSQL's text cannot hold NUL, so an id with one
/// names nothing (a 404, and never a statement that fails with SQLSTATE 22021).
fn storable(id: &str) -> bool {
    !id.contains('\0')
}

async fn meeting(State(state): State<Arc<AppState>>, PathId(id): PathId) -> ApiResult {
    // The contract limits ids in characters, as JSON Schema's maxLength counts.
    if id.chars().count() > 200 {
        return Err(ApiError::bad_request(
            "the meeting id may be at most 200 characters",
        ));
    }
    let found = if storable(&id) {
        state.db.meeting(&id).await?
    } else {
        None
    };
    match found {
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

async fn legislative_file(State(state): State<Arc<AppState>>, PathId(id): PathId) -> ApiResult {
    if id.chars().count() > 40 {
        return Err(ApiError::bad_request(
            "the procedure reference may be at most 40 characters",
        ));
    }
    let found = if storable(&id) {
        state.db.legislative_file(&id).await?
    } else {
        None
    };
    match found {
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

/// The caller, verified from `Authorization: Bearer <token>` (the scheme in any case, as RFC
/// 7235 §2.1 says); a handler that takes it answers 401 to anyone else.
struct User(String);

impl FromRequestParts<Arc<AppState>> for User {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let authorization = parts
            .headers
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or("\u{fffd}"));
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        auth::verify(authorization, &state.jwt_secret, now)
            .map(User)
            .map_err(|r| ApiError::unauthorized(&r))
    }
}

async fn profile(State(state): State<Arc<AppState>>, User(user): User) -> ApiResult {
    match state.db.profile(&user).await? {
        Some(text) => Ok(json_text(text)),
        None => Err(ApiError::not_found("this user has no profile yet")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_answers_500_json_and_the_next_request_is_served() {
        let panicked = guard_panics(async { panic!("a bug") }).await;
        assert_eq!(panicked.status(), 500);
        assert_eq!(
            panicked.headers().get(header::CONTENT_TYPE).unwrap(),
            "application/json"
        );
        let served = guard_panics(async { json_text("{}".to_owned()) }).await;
        assert_eq!(served.status(), 200);
    }

    #[test]
    fn request_ids_follow_the_contract() {
        assert!(is_request_id("abc-1.2_3"));
        assert!(is_request_id(&new_request_id()));
        for bad in ["", "a b", "a/b", "é", &"x".repeat(65)] {
            assert!(!is_request_id(bad), "{bad:?}");
        }
    }
}
