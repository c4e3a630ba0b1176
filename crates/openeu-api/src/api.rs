//! The HTTP API: routes, handlers and the JSON error shape. Postgres renders each result as
//! JSON, so a handler validates parameters, runs one parameterised statement and passes the
//! text on. Every error is `{"error": …, "detail": …}`.

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
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Deserialize;
use serde_json::json;

use crate::{
    auth,
    db::{self, Db},
    log,
    params::{Invalid, Params},
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

pub struct AppState {
    pub db: Db,
    pub jwt_secret: Vec<u8>,
    pub environment: &'static str,
    pub git_branch: Option<String>,
    pub is_pull_request: bool,
    pub version: &'static str,
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/", get(root))
        .route("/meetings", get(meetings))
        .route("/meetings/{id}", get(meeting))
        .route("/legislative-files", get(legislative_files))
        .route("/legislative-files/{*id}", get(legislative_file))
        .route("/countries", get(countries))
        .route("/topics", get(topics))
        .route("/profile", get(profile))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this API only answers GET",
            )
        })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(observe))
        .with_state(state)
}

/// An error response: a status and `{"error", "detail"}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    error: &'static str,
    detail: String,
    www_authenticate: bool,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            error,
            detail: detail.into(),
            www_authenticate: false,
        }
    }

    fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    fn unauthorized(rejection: &auth::Rejection) -> Self {
        ApiError {
            www_authenticate: true,
            ..Self::new(StatusCode::UNAUTHORIZED, "unauthorized", rejection.detail())
        }
    }
}

impl From<Invalid> for ApiError {
    fn from(invalid: Invalid) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_parameter", invalid.0)
    }
}

impl From<db::Error> for ApiError {
    fn from(err: db::Error) -> Self {
        match err {
            db::Error::Unavailable(why) => {
                log::warn("database unavailable", json!({ "error": why }));
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database_unavailable",
                    "the database cannot be reached; retry later",
                )
            }
            db::Error::Query(why) => {
                log::error("query failed", json!({ "error": why }));
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "an internal error occurred",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.error, "detail": self.detail }).to_string();
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
        if self.www_authenticate {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        response
    }
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
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let boot = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            format!("{boot:x}-{:x}", NEXT_ID.fetch_add(1, Ordering::Relaxed))
        });
    let method = request.method().to_string();
    // The path only: query strings are user input and stay out of the logs.
    let path = request.uri().path().to_owned();
    let mut response = match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the request took too long",
        )
        .into_response(),
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

async fn health() -> Response {
    json_text(r#"{"status":"ok"}"#.to_owned())
}

async fn ready(State(state): State<Arc<AppState>>) -> ApiResult {
    match state.db.migration_version().await {
        Ok(Some(version)) if version == db::EXPECTED_MIGRATION => Ok(json_text(
            json!({ "status": "ready", "migration": version }).to_string(),
        )),
        Ok(found) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            format!(
                "the schema is at migration {}, the service expects {}",
                found.as_deref().unwrap_or("none"),
                db::EXPECTED_MIGRATION
            ),
        )),
        Err(db::Error::Query(_)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the schema has no migration history; apply supabase/migrations",
        )),
        Err(err) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            err.to_string(),
        )),
    }
}

async fn root(State(state): State<Arc<AppState>>) -> Response {
    json_text(
        json!({
            "service": "openeu-api",
            "version": state.version,
            "environment": state.environment,
            "git_branch": state.git_branch,
            "is_pull_request": state.is_pull_request,
            "database_host": state.db.host(),
        })
        .to_string(),
    )
}

/// The keyset cursor of /meetings, as rendered by src/sql/meetings.sql: base64url of the last
/// item's start time and id.
#[derive(Deserialize)]
struct Cursor {
    t: String,
    id: String,
}

fn decode_cursor(text: &str) -> Result<Cursor, Invalid> {
    let invalid = || Invalid("`cursor` is not a cursor this API returned".to_owned());
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
            "start", "end", "country", "source", "q", "limit", "offset", "cursor",
        ],
    )?;
    let limit = params.integer("limit", 50, 1, MAX_LIMIT)?;
    let offset = params.integer("offset", 0, 0, MAX_OFFSET)?;
    let cursor = params.get("cursor").map(decode_cursor).transpose()?;
    if cursor.is_some() && offset > 0 {
        return Err(Invalid("give either `cursor` or `offset`, not both".to_owned()).into());
    }
    let filter = db::MeetingFilter {
        start: params.timestamp("start")?,
        end: params.timestamp("end")?,
        country: params.code("country", 2, "an ISO 3166-1 alpha-2 code such as DE, or EU")?,
        source: params.one_of("source", SOURCES)?,
        q: params.text("q", 200)?,
        after: cursor.as_ref().map(|c| (c.t.as_str(), c.id.as_str())),
        limit,
        offset,
    };
    if let (Some(start), Some(end)) = (filter.start, filter.end)
        && !state.db.starts_before(start, end).await?
    {
        return Err(Invalid("`start` must be before `end`".to_owned()).into());
    }
    Ok(json_text(state.db.meetings(&filter).await?))
}

async fn meeting(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> ApiResult {
    if id.len() > 200 {
        return Err(Invalid("the meeting id is too long".to_owned()).into());
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
        return Err(Invalid("the procedure reference is too long".to_owned()).into());
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
