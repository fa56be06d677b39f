//! The routes of the API document under the configured base path (`/api/v1/retry`).
//! Handlers only translate HTTP to engine calls and back; every decision is the engine's.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Path, Query, RawQuery, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use smartretry::{time, Attempt, Decision, Features, Method, Override, Policy};

use super::app::App;
use super::error::ApiError;
use super::extract::{known_params, Body};
use super::{dlq, extract, ml, prometheus, train};

type Shared = State<Arc<App>>;
type ApiResult<T> = Result<T, ApiError>;

pub fn router(app: Arc<App>) -> Router {
    let api = Router::new()
        .route("/recommendation", post(recommendation))
        .route("/recommendations", get(recent_recommendations))
        .route("/preview", post(preview))
        .route("/attempt", post(attempt))
        .route("/stats", get(stats))
        .route("/policies", get(list_policies).post(add_policy))
        .route("/policies/{name}", axum::routing::delete(remove_policy))
        .route("/overrides", get(list_overrides).post(add_override))
        .route("/overrides/{name}", axum::routing::delete(remove_override))
        .route("/health/{job_type}", get(downstream_health))
        .route("/released/{job_type}", get(released))
        .route("/bayesian/update", post(bayesian_update))
        .route("/ml/train", post(train::train).layer(DefaultBodyLimit::max(app.body_limit("/ml/train"))))
        .route("/ml/deploy", post(ml::deploy))
        .route("/ml/rollback", post(ml::rollback))
        .route(
            "/ml/models",
            get(ml::models).post(ml::register).layer(DefaultBodyLimit::max(app.body_limit("/ml/models"))),
        )
        .route("/ml/status", get(ml::status))
        .route("/dlq", get(dlq::list).post(dlq::add).layer(DefaultBodyLimit::max(app.body_limit("/dlq"))))
        .route("/dlq/{id}", get(dlq::inspect))
        .route("/dlq/{id}/retry", post(dlq::retry))
        .route("/dlq/{id}/resolve", post(dlq::resolve))
        .route("/dlq/{id}/notes", post(dlq::note))
        .route("/strategy", get(strategy))
        .route("/guardrails", put(update_guardrails).get(guardrails))
        .route("/emergency-stop", get(emergency_state).post(emergency_stop))
        .route("/settings/changes", get(settings_changes))
        .route("/health", get(health))
        .route("/analytics", get(analytics))
        .route("/alerts", get(alerts))
        .route("/metrics", get(prometheus))
        .route("/openapi.json", get(openapi));
    let base = app.base.clone();
    let api = if base.is_empty() { api } else { Router::new().nest(&base, api) };
    api.route("/metrics", get(prometheus))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
                "this endpoint does not take that method",
            )
        })
        .layer(DefaultBodyLimit::max(app.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(Arc::clone(&app), extract::require))
        .with_state(app)
}

async fn recommendation(
    State(app): Shared,
    RawQuery(query): RawQuery,
    Body(f): Body<Features>,
) -> ApiResult<Response> {
    // `?dead_letter=true`: put a job this recommendation gives up on in the queue.
    let values = [("true", true), ("false", false)];
    let dead_letter =
        one_param(query.as_deref().unwrap_or(""), "dead_letter", &values)?.unwrap_or(app.dlq_on_give_up);
    let started = Instant::now();
    let decision = app.engine.decide(&f, None);
    app.metrics.decision_latency.observe(started.elapsed());
    let decision = decision?;
    let dead_letter = if dead_letter { dlq::on_give_up(&app, &f, &decision)? } else { None };
    app.remember(f, decision.clone());
    let mut response = if is_load_shed(&decision) {
        app.metrics.refused_429.fetch_add(1, Ordering::Relaxed);
        ApiError::refused(decision).into_response()
    } else {
        Json(decision).into_response()
    };
    if let Some(id) = dead_letter.and_then(|id| axum::http::HeaderValue::from_str(&id).ok()) {
        response.headers_mut().insert("dead-letter-id", id);
    }
    Ok(response)
}

/// The one query parameter `name` an endpoint takes, as one of `values`; `None` when
/// absent. Any other parameter is refused, named.
fn one_param(query: &str, name: &str, values: &[(&str, bool)]) -> ApiResult<Option<bool>> {
    let mut chosen = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != name {
            return Err(ApiError::invalid(
                key,
                format!("unknown query parameter (this endpoint takes: {name})"),
            ));
        }
        let known: Vec<&str> = values.iter().map(|(v, _)| *v).collect();
        let (_, on) = values.iter().find(|(v, _)| *v == value).ok_or_else(|| {
            ApiError::invalid(name, format!("expected {}, got {value:?}", known.join(" or ")))
        })?;
        chosen = Some(*on);
    }
    Ok(chosen)
}

/// Whether a load-shedding guardrail ([`Guardrail::sheds_load`](smartretry::Guardrail::sheds_load)),
/// rather than the failure itself, said no: the recommendation is answered 429.
pub fn is_load_shed(d: &Decision) -> bool {
    !d.should_retry
        && matches!(d.method, Method::Guardrail | Method::Breaker)
        && d.policy_guardrails.iter().any(|g| g.sheds_load())
}

/// The last recommendations made (`?limit=`, default 50), newest first.
async fn recent_recommendations(
    State(app): Shared,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    known_params(&q, &["limit"])?;
    let limit = match q.get("limit") {
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| ApiError::invalid("limit", format!("expected a count, got {v:?}")))?,
        None => 50,
    };
    Ok(Json(json!({ "recommendations": app.recent(limit) })).into_response())
}

#[derive(Deserialize)]
struct PreviewRequest {
    features: Features,
    max_attempts: Option<u32>,
}

async fn preview(State(app): Shared, Body(req): Body<PreviewRequest>) -> ApiResult<Response> {
    let max = req.max_attempts.unwrap_or_else(|| app.engine.guardrails().max_attempts);
    Ok(Json(app.engine.preview(&req.features, max, None)?).into_response())
}

/// How long a durable acknowledgement waits for the store before answering 503.
pub const DURABLE_ACK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Record an outcome. `?ack=buffered` (the default unless `server.attempt_ack` says
/// otherwise): 202 once the engine has it — it has learned from it and queued it for the
/// store, so a crash of this process in the next ~50 ms loses it. `?ack=durable`: 202 only
/// once the store has it (the SQLite transaction committed / Redis replied); if the store
/// does not confirm within 10 s, 503 — the outcome is learned and stays buffered, and will
/// be written when the store answers, but nothing was promised.
async fn attempt(
    State(app): Shared,
    RawQuery(query): RawQuery,
    Body(a): Body<Attempt>,
) -> ApiResult<Response> {
    let values = [("durable", true), ("buffered", false)];
    let durable = one_param(query.as_deref().unwrap_or(""), "ack", &values)?.unwrap_or(app.durable_acks);
    app.engine.record(&a, None)?;
    if durable {
        let flushing = Arc::clone(&app);
        let flushed = tokio::task::spawn_blocking(move || flushing.engine.flush(DURABLE_ACK_TIMEOUT))
            .await
            .map_err(|e| smartretry::Error::Store(e.to_string()))?;
        if let Err(e) = flushed {
            app.metrics.durable_unconfirmed.fetch_add(1, Ordering::Relaxed);
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Not durable",
                format!("the outcome is learned and buffered, but the store did not confirm it: {e}"),
            ));
        }
    }
    let ack = if durable { "durable" } else { "buffered" };
    Ok((StatusCode::ACCEPTED, Json(json!({ "recorded": true, "job_id": a.job_id, "ack": ack })))
        .into_response())
}

async fn stats(State(app): Shared, Query(q): Query<HashMap<String, String>>) -> ApiResult<Response> {
    known_params(&q, &["job_type", "error_class", "window"])?;
    let required = |field: &'static str| {
        q.get(field)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::invalid(field, "query parameter is required"))
    };
    let (job_type, error_class) = (required("job_type")?, required("error_class")?);
    let window = match q.get("window") {
        Some(w) => Some(time::parse_duration_ms(w).map_err(|reason| ApiError::invalid("window", reason))?),
        None => None,
    };
    Ok(Json(app.engine.stats(job_type, error_class, window, None)?).into_response())
}

async fn list_policies(State(app): Shared) -> Json<serde_json::Value> {
    Json(json!({ "policies": app.engine.policies() }))
}

async fn add_policy(State(app): Shared, Body(p): Body<Policy>) -> ApiResult<Response> {
    app.engine.add_policy(p.clone())?;
    Ok((StatusCode::CREATED, Json(p)).into_response())
}

async fn remove_policy(State(app): Shared, Path(name): Path<String>) -> ApiResult<Response> {
    let removed = app.engine.remove_policy(&name)?;
    Ok(Json(json!({ "removed": removed })).into_response())
}

async fn list_overrides(State(app): Shared) -> Json<serde_json::Value> {
    Json(json!({ "overrides": app.engine.overrides(None) }))
}

/// Adds (or, by name, replaces) an operator override: 201 with it and what it replaced.
async fn add_override(State(app): Shared, Body(o): Body<Override>) -> ApiResult<Response> {
    let replaced = app.engine.add_override(o.clone(), None)?;
    Ok((StatusCode::CREATED, Json(json!({ "override": o, "replaced": replaced }))).into_response())
}

async fn remove_override(State(app): Shared, Path(name): Path<String>) -> ApiResult<Response> {
    let removed = app.engine.remove_override(&name)?;
    Ok(Json(json!({ "removed": removed })).into_response())
}

/// One downstream's health score and the factor its rules-tier delays get.
async fn downstream_health(State(app): Shared, Path(job_type): Path<String>) -> ApiResult<Response> {
    Ok(Json(app.engine.health(&job_type, None)?).into_response())
}

/// Probe-and-release: a job waiting out a decision with `check_in_ms` asks whether the
/// downstream has come back since its failure (`failed_at_ms`), and retries now if so.
async fn released(
    State(app): Shared,
    Path(job_type): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    known_params(&q, &["failed_at_ms"])?;
    let failed_at_ms = q
        .get("failed_at_ms")
        .ok_or_else(|| ApiError::invalid("failed_at_ms", "query parameter is required"))?
        .parse::<u64>()
        .map_err(|_| ApiError::invalid("failed_at_ms", "must be a Unix time in ms"))?;
    let released = app.engine.released(&job_type, failed_at_ms, None)?;
    Ok(Json(json!({ "job_type": job_type, "failed_at_ms": failed_at_ms, "released": released }))
        .into_response())
}

#[derive(Deserialize)]
struct KeyRequest {
    job_type: String,
    error_class: String,
}

async fn bayesian_update(State(app): Shared, Body(k): Body<KeyRequest>) -> ApiResult<Response> {
    app.engine.refit(&k.job_type, &k.error_class)?;
    let stats = app.engine.stats(&k.job_type, &k.error_class, None, None)?;
    Ok(Json(json!({ "updated": true, "job_type": k.job_type, "error_class": k.error_class, "stats": stats }))
        .into_response())
}

async fn strategy(State(app): Shared) -> Response {
    Json(app.engine.strategy()).into_response()
}

async fn guardrails(State(app): Shared) -> Response {
    Json(app.engine.guardrails()).into_response()
}

async fn update_guardrails(State(app): Shared, Body(patch): Body<serde_json::Value>) -> ApiResult<Response> {
    Ok(Json(app.engine.patch_guardrails(&patch)?).into_response())
}

/// The emergency stop with its reason, who and when (kept with the state).
async fn emergency_state(State(app): Shared) -> Json<serde_json::Value> {
    let state = app.engine.emergency_state();
    Json(json!({ "emergency_stop": state.enabled, "reason": state.reason, "by": state.by, "at": state.at }))
}

#[derive(Deserialize)]
struct EmergencyRequest {
    enabled: bool,
    #[serde(default)]
    reason: Option<String>,
    /// Who pulls it (kept and listed with the change).
    #[serde(default)]
    by: Option<String>,
}

async fn emergency_stop(State(app): Shared, Body(r): Body<EmergencyRequest>) -> ApiResult<Response> {
    let engine = Arc::clone(&app);
    let (enabled, reason, by) = (r.enabled, r.reason.clone(), r.by.clone());
    tokio::task::spawn_blocking(move || {
        engine.engine.set_emergency_stop(enabled, reason.as_deref(), by.as_deref())
    })
    .await
    .map_err(|e| smartretry::Error::Store(e.to_string()))??;
    let state = if r.enabled { "ON: all retries halted" } else { "off" };
    eprintln!(
        "{} emergency stop {state} ({}, by {})",
        time::format_rfc3339(time::now_ms()),
        r.reason.as_deref().unwrap_or("no reason given"),
        r.by.as_deref().unwrap_or("unknown")
    );
    Ok(emergency_state(State(app)).await.into_response())
}

/// The operators' settings: the version in force and the list of changes, newest first.
async fn settings_changes(
    State(app): Shared,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    known_params(&q, &["limit"])?;
    let (limit, _) = page(&q, 100, smartretry::store::SETTINGS_AUDIT_MAX)?;
    let changes = app.engine.settings_changes(limit)?;
    Ok(Json(json!({ "version": app.engine.settings_version(), "changes": changes })).into_response())
}

/// The server and its store: `status` is `ok`, `degraded` (the store unreachable or
/// failing: decisions go on from memory, outcomes wait in a bounded buffer; `reason` and
/// `since` say why and since when) or `emergency_stop`. 200 always, unless strict health
/// is on: then 503 while degraded.
async fn health(State(app): Shared) -> Response {
    let now = time::now_ms();
    let m = app.engine.metrics();
    let store = app.store_health.status(&app.engine);
    let open =
        app.engine.breakers(Some(now)).iter().filter(|b| b.state == smartretry::BreakerState::Open).count();
    let status = match (store.is_up(), m.emergency_stop) {
        (false, _) => "degraded",
        (true, true) => "emergency_stop",
        (true, false) => "ok",
    };
    let code =
        if app.strict_health && !store.is_up() { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    let body = json!({
        "status": status,
        "reason": store.reason.as_ref().map(|why| format!("store: {why}")),
        "since": store.since,
        "store": store,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": now.saturating_sub(app.started_ms) / 1000,
        "emergency_stop": m.emergency_stop,
        "learned_keys": m.learned_keys,
        "open_breakers": open,
        "timestamp": time::format_rfc3339(now),
    });
    (code, Json(body)).into_response()
}

/// `?limit=` (default `default`, at most `max`) and `?offset=` (default 0).
pub fn page(q: &HashMap<String, String>, default: usize, max: usize) -> ApiResult<(usize, usize)> {
    let count = |field: &'static str, default: usize| match q.get(field) {
        Some(v) => {
            v.parse::<usize>().map_err(|_| ApiError::invalid(field, format!("expected a count, got {v:?}")))
        }
        None => Ok(default),
    };
    let limit = count("limit", default)?;
    if limit > max {
        return Err(ApiError::invalid("limit", format!("at most {max}")));
    }
    Ok((limit, count("offset", 0)?))
}

/// Everything the TUI's analytics panel shows, in one call; circuit breakers paged, the
/// busiest first (`?limit=50&offset=0`), so the answer stays small whatever the labels.
async fn analytics(State(app): Shared, Query(q): Query<HashMap<String, String>>) -> ApiResult<Response> {
    known_params(&q, &["limit", "offset"])?;
    let (limit, offset) = page(&q, 50, 1_000)?;
    let now = time::now_ms();
    let breakers = app.engine.breakers(Some(now));
    let total = breakers.len();
    let (mut busiest, _) = prometheus::busiest(breakers, offset.saturating_add(limit));
    let page: Vec<_> = busiest.drain(..).skip(offset).collect();
    Ok(Json(json!({
        "metrics": app.engine.metrics(),
        "store": app.store_health.status(&app.engine),
        "breakers": page,
        "breakers_total": total,
        "limit": limit,
        "offset": offset,
        "retry_budget": app.engine.retry_budget(Some(now)),
        "refused_429": app.metrics.refused_429.load(Ordering::Relaxed),
        "timestamp": time::format_rfc3339(now),
    }))
    .into_response())
}

/// The alert history, newest first (`?limit=100&offset=0`).
async fn alerts(State(app): Shared, Query(q): Query<HashMap<String, String>>) -> ApiResult<Response> {
    known_params(&q, &["limit", "offset"])?;
    let (limit, offset) = page(&q, 100, 10_000)?;
    let (alerts, total) = app.alerts.recent(limit, offset);
    Ok(Json(json!({ "alerts": alerts, "total": total, "limit": limit, "offset": offset })).into_response())
}

async fn prometheus(State(app): Shared) -> Response {
    let body = prometheus::render(&app, time::now_ms());
    ([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}

/// The OpenAPI 3.1 document of this API, with the configured base path as its server.
async fn openapi(State(app): Shared) -> Response {
    static DOC: &str = include_str!("openapi.json");
    match serde_json::from_str::<serde_json::Value>(DOC) {
        Ok(mut doc) => {
            doc["servers"] = json!([{ "url": app.base }]);
            Json(doc).into_response()
        }
        Err(e) => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error", e.to_string()).into_response()
        }
    }
}
