//! The API document's error JSON: `{"error", "status", "timestamp", "details"}`, plus
//! `field` when one input is to blame, and `decision` on a guardrail refusal (429).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use smartretry::{time, Decision, Error};

/// An error answer: the status and its JSON body (boxed: results stay small).
#[derive(Debug)]
pub struct ApiError {
    pub code: StatusCode,
    pub body: Box<ErrorBody>,
}

#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub error: String,
    pub status: u16,
    pub timestamp: String,
    pub details: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
}

impl ApiError {
    pub fn new(code: StatusCode, error: impl Into<String>, details: impl Into<String>) -> Self {
        let body = ErrorBody {
            error: error.into(),
            status: code.as_u16(),
            timestamp: time::format_rfc3339(time::now_ms()),
            details: details.into(),
            field: None,
            decision: None,
        };
        ApiError { code, body: Box::new(body) }
    }

    /// 400 naming the field at fault.
    pub fn invalid(field: &str, reason: impl std::fmt::Display) -> Self {
        let mut e = ApiError::new(StatusCode::BAD_REQUEST, "Invalid request", format!("{field}: {reason}"));
        e.body.field = Some(field.to_string());
        e
    }

    pub fn unauthorized(details: &str) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "Unauthorized", details)
    }

    pub fn forbidden(details: &str) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "Forbidden", details)
    }

    pub fn not_found(details: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "Not found", details)
    }

    /// 429: a guardrail refused a retry the tiers would have made; the decision goes along.
    pub fn refused(decision: Decision) -> Self {
        let guards: Vec<&str> = decision.policy_guardrails.iter().map(|g| g.as_str()).collect();
        let guards = guards.join(", ");
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!("Retry refused by guardrail: {guards}"),
            decision.rationale.clone(),
        );
        e.body.decision = Some(decision);
        e
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match &e {
            Error::InvalidInput { field, reason } | Error::InvalidType { field, reason } => {
                let mut out = ApiError::invalid(field, reason);
                out.body.error = "Invalid request body".into();
                out
            }
            Error::Config { field, reason } => {
                let mut out = ApiError::invalid(field, reason);
                out.body.error = "Invalid configuration".into();
                out
            }
            Error::NotFound { what } => ApiError::not_found(format!("{what} not found")),
            Error::Store(m) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Storage error", m.clone()),
            Error::Model(m) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Model error", m.clone()),
            other => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error", other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code;
        let mut res = (code, axum::Json(self.body)).into_response();
        if code == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert("www-authenticate", axum::http::HeaderValue::from_static("Bearer"));
        }
        res
    }
}
