//! The API's one error shape: a status and `{"error": …, "detail": …}` (plus, for a few errors,
//! fields that say more, such as the migrations on a 503 from `/ready`). Each kind of error has
//! a named constructor, so a handler says what went wrong and this room decides how it looks.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Map, Value, json};

use crate::{auth, db, log, params::BadParameter};

/// An error response.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    error: &'static str,
    detail: String,
    /// Fields beside `error` and `detail`.
    fields: Map<String, Value>,
    www_authenticate: bool,
}

impl ApiError {
    fn new(status: StatusCode, error: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            error,
            detail: detail.into(),
            fields: Map::new(),
            www_authenticate: false,
        }
    }

    /// A 400: a parameter is unknown, repeated or malformed; `detail` says what to fix.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_parameter", detail)
    }

    /// A 414: the URI is longer than `max` bytes.
    pub fn uri_too_long(max: usize) -> Self {
        Self::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the URI is longer than this API accepts ({max} bytes)"),
        )
    }

    /// A 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// A 405: the API only answers GET.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this API only answers GET",
        )
    }

    /// A 401 with `WWW-Authenticate: Bearer`, saying why the token was refused.
    pub fn unauthorized(rejection: &auth::Rejection) -> Self {
        ApiError {
            www_authenticate: true,
            ..Self::new(StatusCode::UNAUTHORIZED, "unauthorized", rejection.detail())
        }
    }

    /// A 503 from `/ready`: the instance should get no traffic yet.
    pub fn not_ready(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", detail)
    }

    /// A 503: the request did not finish within the request deadline.
    pub fn timeout() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "the request took too long",
        )
    }

    /// A 503: no database connection could be had in time.
    pub fn database_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "the database cannot be reached; retry later",
        )
    }

    /// A 500. The cause goes to the log, never to the client.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred",
        )
    }

    /// Adds the fields of `object` (a JSON object) to the body.
    pub fn with_fields(mut self, object: Value) -> Self {
        if let Value::Object(fields) = object {
            self.fields.extend(fields);
        }
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<BadParameter> for ApiError {
    fn from(invalid: BadParameter) -> Self {
        Self::bad_request(invalid.0)
    }
}

impl From<db::Error> for ApiError {
    fn from(err: db::Error) -> Self {
        match err {
            db::Error::Unavailable(why) => {
                log::warn("database unavailable", json!({ "error": why }));
                Self::database_unavailable()
            }
            db::Error::Invalid(code) => {
                // The SQLSTATE only: the database's message would quote the caller's value.
                log::info("value refused by the database", json!({ "sqlstate": code }));
                Self::bad_request("a parameter's value is outside what the database accepts")
            }
            db::Error::Query(why) => {
                log::error("query failed", json!({ "error": why }));
                Self::internal()
            }
        }
    }
}

impl ApiError {
    /// The body; `error` and `detail` win over extra fields of the same name.
    fn body(&self) -> Value {
        let mut body = self.fields.clone();
        body.insert("error".into(), Value::from(self.error));
        body.insert("detail".into(), Value::from(self.detail.as_str()));
        Value::Object(body)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            self.body().to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_fields_do_not_replace_error_and_detail() {
        let error = ApiError::not_ready("behind")
            .with_fields(json!({ "migration": null, "error": "other" }));
        assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            error.body(),
            json!({ "error": "not_ready", "detail": "behind", "migration": null })
        );
        assert_eq!(ApiError::bad_request("x").status(), StatusCode::BAD_REQUEST);
    }
}
