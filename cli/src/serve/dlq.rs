//! The dead-letter queue over HTTP: list, inspect (with the attempt history), add,
//! manual retry, resolve with a note. The queue itself lives in the engine's store.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use smartretry::dlq::{DeadLetterQuery, DeadLetterStatus, NewDeadLetter};

use super::api::{known_params, Body};
use super::error::ApiError;
use super::App;

type Shared = State<Arc<App>>;

/// `GET /dlq?status=open&job_type=…&limit=100&offset=0`
pub async fn list(
    State(app): Shared,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    known_params(&q, &["status", "job_type", "limit", "offset"])?;
    let count = |field: &'static str, default: usize| match q.get(field) {
        Some(v) => {
            v.parse::<usize>().map_err(|_| ApiError::invalid(field, format!("expected a count, got {v:?}")))
        }
        None => Ok(default),
    };
    let query = DeadLetterQuery {
        status: q.get("status").map(|s| DeadLetterStatus::parse(s)).transpose()?,
        job_type: q.get("job_type").cloned(),
        limit: count("limit", 100)?,
        offset: count("offset", 0)?,
    };
    let entries = app.engine.dead_letters(&query)?;
    let open = app.engine.dead_letter_count(Some(DeadLetterStatus::Open))?;
    Ok(Json(json!({ "dead_letters": entries, "open": open })).into_response())
}

pub async fn add(State(app): Shared, Body(new): Body<NewDeadLetter>) -> Result<Response, ApiError> {
    Ok((StatusCode::CREATED, Json(app.engine.add_dead_letter(new, None)?)).into_response())
}

pub async fn inspect(State(app): Shared, Path(id): Path<String>) -> Result<Response, ApiError> {
    Ok(Json(app.engine.dead_letter(&id)?).into_response())
}

/// Manual retry: the entry is marked retried (the worker that owns the payload re-runs it).
pub async fn retry(State(app): Shared, Path(id): Path<String>) -> Result<Response, ApiError> {
    let entry = app.engine.retry_dead_letter(&id, None)?;
    eprintln!(
        "{} dead letter {id} retried by an operator",
        smartretry::time::format_rfc3339(smartretry::time::now_ms())
    );
    Ok(Json(entry).into_response())
}

#[derive(Deserialize)]
pub struct Resolution {
    note: String,
}

pub async fn resolve(
    State(app): Shared,
    Path(id): Path<String>,
    Body(r): Body<Resolution>,
) -> Result<Response, ApiError> {
    Ok(Json(app.engine.resolve_dead_letter(&id, &r.note, None)?).into_response())
}
