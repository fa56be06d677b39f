//! Alerts from the product documents, checked every `interval`: a downstream's failure
//! rate over a threshold, a circuit breaker open, frequent guardrail overrides. Each
//! (alert, subject) fires at most once per `cooldown`; a firing is written to the log
//! (one JSON line on stderr) and posted as JSON to the configured webhook.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use smartretry::{time, BreakerState, Engine, Error};

use super::App;
use crate::client::{split_url, Client};

/// Alerts kept for `GET /alerts` (and the TUI).
const RECENT: usize = 100;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AlertConfig {
    /// `http://host:port/path`; alerts are only logged when absent.
    pub webhook_url: Option<String>,
    /// How often the rules are checked.
    pub interval: String,
    /// Least time between two firings of one alert for one subject.
    pub cooldown: String,
    /// A downstream whose failure rate (over the breaker window) reaches this alerts…
    pub failure_rate: f64,
    /// …once it saw at least this many outcomes.
    pub failure_rate_min_calls: u64,
    pub breaker_open: bool,
    /// Guardrail interventions per minute above which operators should look at the
    /// recommendations (the documents' `rate(guardrail_overrides[5m]) > 10`/s).
    pub guardrail_overrides_per_minute: f64,
    /// The serving model's drift score (see `/metrics` `smartretry_model_drift`) above
    /// which it should be retrained (the documents' `model_drift_score > 0.3`).
    pub model_drift: f64,
    /// Open dead letters at or above which operators are alerted.
    pub dlq_size: u64,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            webhook_url: None,
            interval: "10s".into(),
            cooldown: "5m".into(),
            failure_rate: 0.5,
            failure_rate_min_calls: 20,
            breaker_open: true,
            guardrail_overrides_per_minute: 600.0,
            model_drift: 0.3,
            dlq_size: 100,
        }
    }
}

impl AlertConfig {
    pub fn validate(&self) -> Result<(), Error> {
        if let Some(url) = &self.webhook_url {
            split_url(url).map_err(|e| Error::config("webhook_url", e.to_string()))?;
        }
        let interval = time::parse_duration_ms(&self.interval).map_err(|r| Error::config("interval", r))?;
        if interval < 10 {
            return Err(Error::config("interval", "must be at least 10ms"));
        }
        time::parse_duration_ms(&self.cooldown).map_err(|r| Error::config("cooldown", r))?;
        if !(self.failure_rate > 0.0 && self.failure_rate <= 1.0) {
            return Err(Error::config("failure_rate", "must be in (0, 1]"));
        }
        if !(self.guardrail_overrides_per_minute.is_finite() && self.guardrail_overrides_per_minute > 0.0) {
            return Err(Error::config("guardrail_overrides_per_minute", "must be a number > 0"));
        }
        if !(self.model_drift.is_finite() && self.model_drift > 0.0) {
            return Err(Error::config("model_drift", "must be a number > 0"));
        }
        Ok(())
    }
}

/// One firing, as logged, posted and listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// `high_failure_rate`, `breaker_open`, `frequent_guardrail_overrides`.
    pub alert: String,
    pub severity: String,
    /// What it is about (a job type; `all` for global alerts).
    pub subject: String,
    pub message: String,
    pub value: f64,
    pub threshold: f64,
    pub timestamp: String,
}

/// Alert state: last firing per (alert, subject), the recent list, the previous count of
/// guardrail interventions (for a rate).
pub struct Alerts {
    config: AlertConfig,
    interval_ms: u64,
    cooldown_ms: u64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    last_fired: HashMap<(String, String), u64>,
    recent: VecDeque<Alert>,
    previous_overrides: Option<(u64, u64)>,
}

impl Alerts {
    pub fn new(config: AlertConfig) -> Result<Alerts, Error> {
        config.validate()?;
        let ms =
            |s: &str, field: &'static str| time::parse_duration_ms(s).map_err(|r| Error::config(field, r));
        Ok(Alerts {
            interval_ms: ms(&config.interval, "interval")?,
            cooldown_ms: ms(&config.cooldown, "cooldown")?,
            config,
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn recent(&self) -> Vec<Alert> {
        self.state().recent.iter().cloned().collect()
    }

    /// Check every rule at `now`; returns the alerts that fire (cooldown applied).
    pub fn evaluate(&self, engine: &Engine, now: u64) -> Vec<Alert> {
        let c = &self.config;
        let mut candidates = Vec::new();
        let mut alert =
            |name: &str, severity: &str, subject: &str, message: String, value: f64, threshold: f64| {
                candidates.push(Alert {
                    alert: name.into(),
                    severity: severity.into(),
                    subject: subject.into(),
                    message,
                    value,
                    threshold,
                    timestamp: time::format_rfc3339(now),
                })
            };
        for b in engine.breakers(Some(now)) {
            let calls = b.failures + b.successes;
            if calls >= c.failure_rate_min_calls && b.failure_rate >= c.failure_rate {
                alert(
                    "high_failure_rate",
                    "warning",
                    &b.key,
                    format!("{} fails {:.0}% of {calls} recent calls", b.key, b.failure_rate * 100.0),
                    b.failure_rate,
                    c.failure_rate,
                );
            }
            if c.breaker_open && b.state == BreakerState::Open {
                alert(
                    "breaker_open",
                    "critical",
                    &b.key,
                    format!("circuit breaker for {} is open: its retries wait for the cool-down", b.key),
                    1.0,
                    1.0,
                );
            }
        }
        if let Ok(open) = engine.dead_letter_count(Some(smartretry::dlq::DeadLetterStatus::Open)) {
            if open >= c.dlq_size {
                alert(
                    "dlq_size",
                    "warning",
                    "dlq",
                    format!("{open} dead letters are waiting for an operator"),
                    open as f64,
                    c.dlq_size as f64,
                );
            }
        }
        let ml = engine.ml_status();
        if let (Some(drift), Some(version)) = (super::ml::drift(&ml), ml.deployment.serving.as_deref()) {
            if drift > c.model_drift {
                alert(
                    "model_drift",
                    "warning",
                    version,
                    format!(
                        "model {version} is {:.0}% worse calibrated than in training: consider retraining",
                        drift * 100.0
                    ),
                    drift,
                    c.model_drift,
                );
            }
        }
        if ml.enabled && !ml.available {
            let why = ml.reason.clone().unwrap_or_else(|| "unknown".into());
            alert(
                "ml_unavailable",
                "critical",
                "ml",
                format!("retry system degraded to the Bayesian tier: {why}"),
                1.0,
                1.0,
            );
        }
        let overrides: u64 = engine.metrics().guardrail_triggers.iter().map(|(_, n)| n).sum();
        let mut state = self.state();
        if let Some((then, before)) = state.previous_overrides {
            let minutes = now.saturating_sub(then) as f64 / 60_000.0;
            let rate = if minutes > 0.0 { overrides.saturating_sub(before) as f64 / minutes } else { 0.0 };
            if rate > c.guardrail_overrides_per_minute {
                alert(
                    "frequent_guardrail_overrides",
                    "critical",
                    "all",
                    format!("guardrails changed {rate:.0} decisions per minute: check the recommendations"),
                    rate,
                    c.guardrail_overrides_per_minute,
                );
            }
        }
        state.previous_overrides = Some((now, overrides));
        let cooldown = self.cooldown_ms;
        candidates.retain(|a| {
            let key = (a.alert.clone(), a.subject.clone());
            match state.last_fired.get(&key) {
                Some(&at) if now.saturating_sub(at) < cooldown => false,
                _ => {
                    state.last_fired.insert(key, now);
                    true
                }
            }
        });
        for a in &candidates {
            if state.recent.len() == RECENT {
                state.recent.pop_front();
            }
            state.recent.push_back(a.clone());
        }
        candidates
    }
}

/// The background loop: evaluate, log, post.
pub async fn watch(app: Arc<App>) {
    let period = std::time::Duration::from_millis(app.alerts.interval_ms);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut webhook = app.alerts.config.webhook_url.as_deref().and_then(|url| Client::new(url).ok());
    loop {
        ticker.tick().await;
        let fired = app.alerts.evaluate(&app.engine, time::now_ms());
        for alert in fired {
            app.metrics.alerts.fetch_add(1, Ordering::Relaxed);
            let line = serde_json::to_string(&alert).unwrap_or_default();
            eprintln!("alert: {line}");
            if let Some(client) = webhook.as_mut() {
                let body = serde_json::to_value(&alert).unwrap_or_default();
                match client.post("", &body).await {
                    Ok(r) if r.status < 300 => {}
                    Ok(r) => eprintln!("alert webhook answered {}: {}", r.status, r.body),
                    Err(e) => eprintln!("alert webhook failed: {e}"),
                }
            }
        }
    }
}
