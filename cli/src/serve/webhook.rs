//! Alert delivery: every alert on the bounded queue is posted to every webhook at once
//! (a slow or dead receiver delays nobody else), each post bounded by
//! `webhook_timeout`, and a failed post retried when smartretry itself says so — the
//! server's own small engine (memory store) decides whether and when, like any caller's.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use smartretry::{time, Attempt, Engine, Features, Guardrails};
use tokio::sync::Semaphore;

use super::app::App;
use crate::client::{Client, ClientError};

/// Posts in flight at once, over every webhook.
const CONCURRENT_POSTS: usize = 32;
/// The job type the delivery engine learns webhooks under.
const JOB_TYPE: &str = "alert_webhook";

/// The delivery loop: one task per (alert, webhook), at most [`CONCURRENT_POSTS`] at once.
pub async fn deliver(app: Arc<App>) {
    let Some(mut inbox) = app.alerts.take_inbox() else { return };
    let webhooks = app.alerts.config.webhooks();
    let timeout =
        Duration::from_millis(time::parse_duration_ms(&app.alerts.config.webhook_timeout).unwrap_or(5_000));
    let attempts = app.alerts.config.webhook_attempts;
    let engine = match delivery_engine() {
        Ok(engine) => Arc::new(engine),
        Err(e) => {
            eprintln!("alerts: webhook delivery cannot start: {e}");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(CONCURRENT_POSTS));
    let mut serial = 0u64;
    while let Some(alert) = inbox.recv().await {
        let body = Arc::new(serde_json::to_value(&alert).unwrap_or_default());
        for url in &webhooks {
            serial += 1;
            let Ok(permit) = Arc::clone(&slots).acquire_owned().await else { return };
            let (app, engine, body, url) =
                (Arc::clone(&app), Arc::clone(&engine), Arc::clone(&body), url.clone());
            let job_id = format!("alert-{serial}");
            let job_type = job_type(&url);
            tokio::spawn(async move {
                let outcome = post(&engine, &url, &body, (&job_type, &job_id), timeout, attempts).await;
                let counter = if outcome.is_ok() { &app.alerts.delivered } else { &app.alerts.undelivered };
                counter.fetch_add(1, Ordering::Relaxed);
                if let Err(why) = outcome {
                    eprintln!(
                        "{} alert {} for {} not delivered to {url}: {why}",
                        time::format_rfc3339(time::now_ms()),
                        alert_name(&body),
                        body["subject"].as_str().unwrap_or("?"),
                    );
                }
                drop(permit);
            });
        }
    }
}

/// The engine that decides the waits between tries: budgets, throttling and breakers are
/// for fleets of jobs; a few alerts, each with a bounded number of tries, need none of
/// them, and no wait past 30 s.
fn delivery_engine() -> smartretry::Result<Engine> {
    let mut config = smartretry::Config::default();
    config.strategy.guardrails = Guardrails {
        adaptive_throttle: false,
        min_retries_per_sec: 100.0,
        max_delay_ms: 30_000,
        ..Guardrails::default()
    };
    config.strategy.circuit_breaker.enabled = false;
    Engine::from_config(config)
}

/// Each receiver is learned apart (one is slow, another refuses connections).
fn job_type(url: &str) -> String {
    let host = crate::client::split_url(url).map(|(addr, _)| addr).unwrap_or_default();
    format!("{JOB_TYPE}:{host}")
}

fn alert_name(body: &serde_json::Value) -> &str {
    body["alert"].as_str().unwrap_or("?")
}

/// Post until the webhook takes it (2xx) or the engine says stop; the error says why.
async fn post(
    engine: &Engine,
    url: &str,
    body: &serde_json::Value,
    (job_type, job_id): (&str, &str),
    timeout: Duration,
    attempts: u32,
) -> Result<(), String> {
    let first = time::now_ms();
    let mut delay_ms = 0;
    for attempt_number in 1..=attempts {
        let answer = match Client::new(url) {
            Ok(client) => client.with_timeout(timeout).post("", body).await,
            Err(e) => return Err(e.to_string()),
        };
        let (http_status, error_class, why) = match &answer {
            Ok(r) if r.status < 300 => (None, None, None),
            Ok(r) => (Some(r.status), None, Some(format!("answered {}: {}", r.status, r.body.trim()))),
            Err(e @ ClientError::Timeout { .. }) => (None, Some("timeout"), Some(e.to_string())),
            Err(e) => (None, Some("connection_error"), Some(e.to_string())),
        };
        let now = time::now_ms();
        let since = now.saturating_sub(first);
        let _ = engine.record(
            &Attempt {
                job_id: job_id.into(),
                job_type: job_type.into(),
                attempt_number,
                success: why.is_none(),
                delay_ms,
                error_class: error_class.map(str::to_string),
                http_status,
                since_first_failure_ms: (attempt_number > 1).then_some(since),
                ..Attempt::default()
            },
            Some(now),
        );
        let Some(why) = why else { return Ok(()) };
        let mut failure = Features::new(job_type, attempt_number).with_job_id(job_id);
        failure.http_status = http_status;
        failure.error_class = error_class.map(str::to_string);
        failure.max_attempts = Some(attempts);
        failure.since_first_failure_ms = Some(since);
        match engine.decide(&failure, Some(now)) {
            Ok(d) if d.should_retry && attempt_number < attempts => {
                delay_ms = d.delay_ms;
                tokio::time::sleep(Duration::from_millis(d.delay_ms)).await;
            }
            Ok(d) => return Err(format!("{why} ({})", d.rationale)),
            Err(e) => return Err(format!("{why} ({e})")),
        }
    }
    Err("no attempt left".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connection_is_retried_as_smartretry_decides_then_reported() {
        // A port nobody listens on: bind, note, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let engine = delivery_engine().unwrap();
        let body = serde_json::json!({"alert": "x"});
        let url = format!("http://127.0.0.1:{port}/hook");
        let err = post(&engine, &url, &body, (&job_type(&url), "j"), Duration::from_millis(200), 2)
            .await
            .unwrap_err();
        assert!(err.contains("127.0.0.1"), "{err}");
        assert_eq!(engine.metrics().records_total, 2, "both tries were recorded");
    }
}
