//! The dead-letter queue over HTTP: list, inspect (with the attempt history), add (with
//! an inline payload up to the core's 1 MiB), manual retry, notes (append-only: who,
//! when, what) and resolve; and, when asked, a dead letter for every job a recommendation
//! gives up on. The queue itself lives in the engine's store.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use smartretry::{DeadLetterQuery, DeadLetterStatus, NewDeadLetter};
use smartretry::{Decision, Features};

use super::app::App;
use super::error::ApiError;
use super::extract::{known_params, Body};

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

/// A note: what was done, and who did it.
#[derive(Deserialize)]
pub struct Note {
    note: String,
    #[serde(default)]
    by: Option<String>,
}

/// Resolve with a note (appended to the notes; an earlier one is never overwritten).
pub async fn resolve(
    State(app): Shared,
    Path(id): Path<String>,
    Body(n): Body<Note>,
) -> Result<Response, ApiError> {
    Ok(Json(app.engine.note_dead_letter(&id, &n.note, n.by.as_deref(), true, None)?).into_response())
}

/// Add a note without resolving.
pub async fn note(
    State(app): Shared,
    Path(id): Path<String>,
    Body(n): Body<Note>,
) -> Result<Response, ApiError> {
    Ok((StatusCode::CREATED, Json(app.engine.note_dead_letter(&id, &n.note, n.by.as_deref(), false, None)?))
        .into_response())
}

/// After a recommendation that gives the job up, put it in the queue (when asked: the
/// server's `dlq.on_give_up`, or the request's `?dead_letter=`). Returns its id.
pub fn on_give_up(app: &App, f: &Features, d: &Decision) -> Result<Option<String>, ApiError> {
    let Some(job_id) = f.job_id.clone().filter(|_| !d.should_retry) else { return Ok(None) };
    let new = NewDeadLetter {
        job_id,
        job_type: f.job_type.clone(),
        error_class: Some(d.error_class.clone()),
        tenant: f.tenant.clone(),
        failure_reason: d.rationale.clone(),
        ..NewDeadLetter::default()
    };
    Ok(Some(app.engine.add_dead_letter(new, None)?.id))
}
