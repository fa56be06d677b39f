//! What every request goes through before its handler: the token check and, for a body,
//! the strict JSON extractor; and the query-parameter check handlers share.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::app::App;
use super::error::ApiError;

type ApiResult<T> = Result<T, ApiError>;

/// The middleware in front of every route.
pub async fn require(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let path = path.strip_prefix(app.base.as_str()).filter(|p| p.starts_with('/')).unwrap_or(path);
    let header = req.headers().get(AUTHORIZATION).and_then(|h| h.to_str().ok());
    match app.auth.check(req.method(), path, header) {
        Ok(()) => next.run(req).await,
        Err(e) => {
            if e.code == StatusCode::UNAUTHORIZED || e.code == StatusCode::FORBIDDEN {
                app.metrics.auth_refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            e.into_response()
        }
    }
}

/// A JSON body parsed by the core (errors name the field), within the size limit.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<App>> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &Arc<App>) -> ApiResult<Self> {
        let limit = app.body_limit(req.uri().path().strip_prefix(app.base.as_str()).unwrap_or_default());
        let bytes = Bytes::from_request(req, app).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "Request body too large",
                    format!("body: larger than this endpoint's limit of {limit} bytes"),
                )
            } else {
                ApiError::invalid("body", rejection.body_text())
            }
        })?;
        let text =
            std::str::from_utf8(&bytes).map_err(|_| ApiError::invalid("body", "must be UTF-8 JSON"))?;
        // Every body is an object (serde would also read a struct from an array).
        if !text.trim_start().starts_with('{') {
            return Err(ApiError::invalid("body", "a JSON object is required"));
        }
        // Unknown fields are refused, named: a misspelt setting must not be a silent no-op.
        Ok(Body(smartretry::from_json_strict(text)?))
    }
}

/// Refuse a query parameter the endpoint does not take, naming it.
pub fn known_params(q: &HashMap<String, String>, known: &[&str]) -> ApiResult<()> {
    match q.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => Err(ApiError::invalid(
            k,
            format!("unknown query parameter (this endpoint takes: {})", known.join(", ")),
        )),
    }
}
