//! `/metrics` in the Prometheus text exposition format (version 0.0.4), rendered from
//! the engine's counters and the server's own ([`super::metrics`]).

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use smartretry::DeadLetterStatus;
use smartretry::{BreakerSnapshot, BreakerState};

use super::app::App;

/// Escape a label value (backslash, quote, newline).
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A metric without labels: its help, type and value.
fn scalar(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    metric(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Job types beyond the busiest, together.
#[derive(Debug, Default, PartialEq)]
pub struct Other {
    pub job_types: usize,
    /// How many are closed, open, half-open.
    pub in_state: [u64; 3],
    pub failures: u64,
    pub successes: u64,
}

/// The `n` busiest breakers (most calls in their window, then by name: a stable order),
/// and the rest summed up.
pub fn busiest(mut breakers: Vec<BreakerSnapshot>, n: usize) -> (Vec<BreakerSnapshot>, Option<Other>) {
    let calls = |b: &BreakerSnapshot| b.failures + b.successes;
    if breakers.len() > n {
        breakers.select_nth_unstable_by(n, |a, b| calls(b).cmp(&calls(a)).then_with(|| a.key.cmp(&b.key)));
    }
    let rest = breakers.split_off(n.min(breakers.len()));
    breakers.sort_by(|a, b| calls(b).cmp(&calls(a)).then_with(|| a.key.cmp(&b.key)));
    let other = (!rest.is_empty()).then(|| {
        let mut o = Other { job_types: rest.len(), ..Other::default() };
        for b in &rest {
            let i = match b.state {
                BreakerState::Closed => 0,
                BreakerState::Open => 1,
                BreakerState::HalfOpen => 2,
            };
            o.in_state[i] += 1;
            o.failures += b.failures;
            o.successes += b.successes;
        }
        o
    });
    (breakers, other)
}

/// Everything an operator graphs or alerts on, as of `now_ms`.
pub fn render(app: &App, now_ms: u64) -> String {
    let (engine, server, max_job_types) = (&app.engine, &app.metrics, app.max_job_types);
    let m = engine.metrics();
    let mut out = String::with_capacity(4096);

    metric(
        &mut out,
        "smartretry_recommendations_total",
        "counter",
        "Retry decisions made, by the tier that decided.",
    );
    for (method, n) in &m.decisions_by_method {
        let _ = writeln!(out, "smartretry_recommendations_total{{method=\"{}\"}} {n}", method.as_str());
    }
    scalar(
        &mut out,
        "smartretry_retries_granted_total",
        "counter",
        "Decisions that said retry.",
        m.retries_total,
    );
    scalar(
        &mut out,
        "smartretry_retries_refused_total",
        "counter",
        "Decisions that said do not retry.",
        m.refusals_total,
    );
    scalar(
        &mut out,
        "smartretry_guardrail_refusals_http_total",
        "counter",
        "Recommendations answered 429 (a guardrail refused).",
        server.refused_429.load(std::sync::atomic::Ordering::Relaxed),
    );

    metric(
        &mut out,
        "smartretry_guardrail_triggers_total",
        "counter",
        "Decisions a guardrail changed, by guardrail.",
    );
    for (name, n) in &m.guardrail_triggers {
        let _ = writeln!(out, "smartretry_guardrail_triggers_total{{guardrail=\"{name}\"}} {n}");
    }

    let (top, other) = busiest(engine.breakers(Some(now_ms)), max_job_types);
    metric(
        &mut out,
        "smartretry_circuit_breaker_state",
        "gauge",
        "Circuit breaker per downstream (job type): 1 for its current state. Only the busiest \
         job types (server.metrics.max_job_types) have their own series; job_type=\"other\" counts \
         how many of the rest are in each state.",
    );
    let states = [
        (BreakerState::Closed, "closed"),
        (BreakerState::Open, "open"),
        (BreakerState::HalfOpen, "half_open"),
    ];
    for b in &top {
        for (state, name) in states {
            let _ = writeln!(
                out,
                "smartretry_circuit_breaker_state{{job_type=\"{}\",state=\"{name}\"}} {}",
                label(&b.key),
                u8::from(b.state == state)
            );
        }
    }
    if let Some(other) = &other {
        for (i, (_, name)) in states.iter().enumerate() {
            let _ = writeln!(
                out,
                "smartretry_circuit_breaker_state{{job_type=\"other\",state=\"{name}\"}} {}",
                other.in_state[i]
            );
        }
    }
    metric(
        &mut out,
        "smartretry_downstream_failure_rate",
        "gauge",
        "Failure rate per downstream over the breaker window (job_type=\"other\": the rest together).",
    );
    for b in &top {
        let _ = writeln!(
            out,
            "smartretry_downstream_failure_rate{{job_type=\"{}\"}} {}",
            label(&b.key),
            b.failure_rate
        );
    }
    if let Some(other) = &other {
        let calls = other.failures + other.successes;
        let rate = if calls == 0 { 0.0 } else { other.failures as f64 / calls as f64 };
        let _ = writeln!(out, "smartretry_downstream_failure_rate{{job_type=\"other\"}} {rate}");
    }
    scalar(
        &mut out,
        "smartretry_job_types",
        "gauge",
        "Job types with a circuit breaker (with or without their own series).",
        top.len() + other.as_ref().map_or(0, |o| o.job_types),
    );

    let budget = engine.retry_budget(Some(now_ms));
    scalar(
        &mut out,
        "smartretry_retry_budget_used",
        "gauge",
        "Retries granted in the budget window.",
        budget.retries,
    );
    scalar(
        &mut out,
        "smartretry_retry_budget_allowed",
        "gauge",
        "Retries the budget window allows.",
        budget.allowed,
    );
    metric(&mut out, "smartretry_retry_budget_ratio", "gauge", "Share of the retry budget spent (0-1).");
    let ratio =
        if budget.allowed == 0 { 1.0 } else { (budget.retries as f64 / budget.allowed as f64).min(1.0) };
    let _ = writeln!(out, "smartretry_retry_budget_ratio {ratio}");

    scalar(
        &mut out,
        "smartretry_learned_keys",
        "gauge",
        "(job_type, error_class) keys with learned state.",
        m.learned_keys,
    );
    scalar(
        &mut out,
        "smartretry_key_evictions_total",
        "counter",
        "Learned keys evicted at the key cap (LRU).",
        m.key_evictions_total,
    );
    scalar(
        &mut out,
        "smartretry_policy_cache_hits_total",
        "counter",
        "Decisions whose policy came from the cache of matched policies.",
        m.policy_cache_hits_total,
    );
    scalar(
        &mut out,
        "smartretry_policy_cache_misses_total",
        "counter",
        "Decisions that matched their policy anew (not cached, expired or evicted).",
        m.policy_cache_misses_total,
    );

    scalar(
        &mut out,
        "smartretry_released_total",
        "counter",
        "Waiting jobs told to retry now: their downstream came back (probe-and-release).",
        m.released_total,
    );
    scalar(
        &mut out,
        "smartretry_attempts_recorded_total",
        "counter",
        "Attempt outcomes recorded.",
        m.records_total,
    );
    scalar(&mut out, "smartretry_bayesian_refits_total", "counter", "Bayesian model refits.", m.refits_total);
    scalar(
        &mut out,
        "smartretry_emergency_stop",
        "gauge",
        "1 while the emergency stop is on.",
        u8::from(m.emergency_stop),
    );
    scalar(
        &mut out,
        "smartretry_auth_refused_total",
        "counter",
        "Requests refused 401/403 (token missing, invalid or read-only).",
        server.auth_refused.load(Ordering::Relaxed),
    );
    scalar(
        &mut out,
        "smartretry_alerts_total",
        "counter",
        "Alerts fired (after cooldown).",
        server.alerts.load(std::sync::atomic::Ordering::Relaxed),
    );

    let store = app.store_health.status(engine);
    scalar(
        &mut out,
        "smartretry_store_up",
        "gauge",
        "1 while the store answers and takes writes, 0 while degraded.",
        u8::from(store.is_up()),
    );
    scalar(
        &mut out,
        "smartretry_store_write_errors_total",
        "counter",
        "Failed store writes and fleet syncs.",
        store.errors_total,
    );
    scalar(
        &mut out,
        "smartretry_store_buffered",
        "gauge",
        "Outcomes and audit records waiting to be written.",
        store.buffered,
    );
    scalar(
        &mut out,
        "smartretry_store_dropped_total",
        "counter",
        "Records dropped: the buffer was full while the store was down.",
        store.dropped_total,
    );
    scalar(
        &mut out,
        "smartretry_store_written_total",
        "counter",
        "Records written to the store.",
        m.store_written_total,
    );
    scalar(
        &mut out,
        "smartretry_store_transitions_total",
        "counter",
        "Changes of the store's state (up to degraded and back).",
        server.store_transitions.load(Ordering::Relaxed),
    );
    scalar(
        &mut out,
        "smartretry_durable_ack_unconfirmed_total",
        "counter",
        "Durable /attempt acknowledgements the store did not confirm in time (503).",
        server.durable_unconfirmed.load(Ordering::Relaxed),
    );
    let alerts = &app.alerts;
    scalar(
        &mut out,
        "smartretry_alerts_dropped_total",
        "counter",
        "Alerts the full delivery queue had no room for.",
        alerts.dropped.load(Ordering::Relaxed),
    );
    metric(
        &mut out,
        "smartretry_alert_deliveries_total",
        "counter",
        "Alert posts to webhooks, by outcome (after retries).",
    );
    let _ = writeln!(
        out,
        "smartretry_alert_deliveries_total{{outcome=\"delivered\"}} {}",
        alerts.delivered.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "smartretry_alert_deliveries_total{{outcome=\"failed\"}} {}",
        alerts.undelivered.load(Ordering::Relaxed)
    );

    metric(&mut out, "smartretry_dlq_size", "gauge", "Dead letters by status.");
    for status in [DeadLetterStatus::Open, DeadLetterStatus::Retried, DeadLetterStatus::Resolved] {
        if let Ok(n) = engine.dead_letter_count(Some(status)) {
            let _ = writeln!(out, "smartretry_dlq_size{{status=\"{}\"}} {n}", status.as_str());
        }
    }
    let ml = engine.ml_status();
    scalar(
        &mut out,
        "smartretry_ml_available",
        "gauge",
        "1 while the ML tier can take part in decisions.",
        u8::from(ml.enabled && ml.available),
    );
    scalar(
        &mut out,
        "smartretry_ml_errors_total",
        "counter",
        "Model inferences that failed (the tier below decided).",
        ml.errors_total,
    );
    metric(
        &mut out,
        "smartretry_model_accuracy",
        "gauge",
        "Hold-out accuracy of the serving model, as its trainer measured it.",
    );
    if let Some((version, accuracy)) = ml.serving_accuracy() {
        let _ = writeln!(out, "smartretry_model_accuracy{{version=\"{}\"}} {accuracy}", label(version));
    }
    scalar(
        &mut out,
        "smartretry_model_brier_live",
        "gauge",
        "Brier score of the served model's predictions on recorded outcomes.",
        ml.comparison.ml.brier,
    );
    metric(
        &mut out,
        "smartretry_model_drift",
        "gauge",
        "Live Brier score over the training one, minus 1 (0 = as calibrated as in training).",
    );
    if let Some(drift) = ml.drift() {
        let _ = writeln!(out, "smartretry_model_drift {drift}");
    }

    server.decision_latency.render(
        &mut out,
        "smartretry_decision_latency_seconds",
        "Time the engine took to decide one recommendation.",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_busiest_job_types_get_series_of_their_own() {
        let b = |key: &str, calls: u64, state| BreakerSnapshot {
            key: key.into(),
            state,
            failures: calls / 2,
            successes: calls - calls / 2,
            failure_rate: 0.5,
            open_until_ms: None,
        };
        let all = vec![
            b("quiet", 1, BreakerState::Closed),
            b("busy", 100, BreakerState::Closed),
            b("mid", 10, BreakerState::Open),
            b("rare", 2, BreakerState::Open),
        ];
        let (top, other) = busiest(all.clone(), 2);
        assert_eq!(top.iter().map(|b| b.key.as_str()).collect::<Vec<_>>(), ["busy", "mid"]);
        assert_eq!(other, Some(Other { job_types: 2, in_state: [1, 1, 0], failures: 1, successes: 2 }));
        let (top, other) = busiest(all, 10);
        assert_eq!((top.len(), other), (4, None));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
