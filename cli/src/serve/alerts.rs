//! Alerts from the product documents, checked every `interval`: a downstream's failure
//! rate over a threshold, a circuit breaker open, frequent guardrail overrides, the store
//! down (raised at once by the store watcher, see `health.rs`)…
//!
//! Each (rule, subject) fires at most once per `cooldown`; past `max_per_rule` subjects
//! in one check, the rest fire as one summary, so an outage of 300 downstreams is a dozen
//! alerts, not 300. A firing is one JSON line on stderr, an entry of the history (kept
//! with the state, so a restart neither forgets nor repeats it) and a message on a
//! bounded queue that `webhook.rs` posts to every webhook concurrently.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use smartretry::{time, BreakerState, Engine, Error, Store};
use tokio::sync::mpsc;

use crate::client::split_url;

/// Where the history is kept in the store.
const HISTORY_SETTING: &str = "server.alerts.history";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertConfig {
    /// `http://host:port/path`; alerts are only logged when there is no webhook.
    pub webhook_url: Option<String>,
    /// More webhooks: every alert is posted to each.
    pub webhooks: Vec<String>,
    /// Longest wait for one webhook's answer.
    pub webhook_timeout: String,
    /// Tries per alert and webhook (the waits between them are smartretry's own decisions).
    pub webhook_attempts: u32,
    /// Alerts waiting for delivery; past it new ones are dropped and counted.
    pub queue: usize,
    /// Subjects of one rule fired one by one per check; the rest as one summary alert.
    pub max_per_rule: usize,
    /// Alerts kept in the history (`GET /alerts`, the store).
    pub history: usize,
    /// Alert when the store is unreachable or failing (and when it is back).
    pub store_down: bool,
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
            webhooks: Vec::new(),
            webhook_timeout: "5s".into(),
            webhook_attempts: 3,
            queue: 1_000,
            max_per_rule: 10,
            history: 1_000,
            store_down: true,
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
    /// Every webhook, `webhook_url` first.
    pub fn webhooks(&self) -> Vec<String> {
        self.webhook_url.iter().chain(&self.webhooks).cloned().collect()
    }

    pub fn validate(&self) -> Result<(), Error> {
        if let Some(url) = &self.webhook_url {
            split_url(url).map_err(|e| Error::config("webhook_url", e.to_string()))?;
        }
        for (i, url) in self.webhooks.iter().enumerate() {
            split_url(url).map_err(|e| Error::config(format!("webhooks[{i}]"), e.to_string()))?;
        }
        let timeout = time::parse_duration_ms(&self.webhook_timeout)
            .map_err(|r| Error::config("webhook_timeout", r))?;
        if !(10..=120_000).contains(&timeout) {
            return Err(Error::config("webhook_timeout", "must be 10ms – 2m"));
        }
        if !(1..=10).contains(&self.webhook_attempts) {
            return Err(Error::config("webhook_attempts", "must be 1–10"));
        }
        if !(1..=100_000).contains(&self.queue) {
            return Err(Error::config("queue", "must be 1–100000"));
        }
        if !(1..=1_000).contains(&self.max_per_rule) {
            return Err(Error::config("max_per_rule", "must be 1–1000"));
        }
        if !(1..=100_000).contains(&self.history) {
            return Err(Error::config("history", "must be 1–100000"));
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

/// Alert state: last firing per (rule, subject), the history, the previous count of
/// guardrail interventions (for a rate), and the delivery queue.
pub struct Alerts {
    pub(super) config: AlertConfig,
    pub(super) interval_ms: u64,
    cooldown_ms: u64,
    state: Mutex<State>,
    outbox: mpsc::Sender<Alert>,
    inbox: Mutex<Option<mpsc::Receiver<Alert>>>,
    /// Alerts the full delivery queue had no room for.
    pub dropped: AtomicU64,
    /// Deliveries (alert × webhook) that succeeded, and that failed after every try.
    pub delivered: AtomicU64,
    pub undelivered: AtomicU64,
}

#[derive(Default)]
struct State {
    last_fired: HashMap<(String, String), u64>,
    history: VecDeque<Alert>,
    /// The history changed since it was last written to the store.
    unsaved: bool,
    previous_overrides: Option<(u64, u64)>,
}

impl Alerts {
    pub fn new(config: AlertConfig) -> Result<Alerts, Error> {
        config.validate()?;
        let ms =
            |s: &str, field: &'static str| time::parse_duration_ms(s).map_err(|r| Error::config(field, r));
        let (outbox, inbox) = mpsc::channel(config.queue);
        Ok(Alerts {
            interval_ms: ms(&config.interval, "interval")?,
            cooldown_ms: ms(&config.cooldown, "cooldown")?,
            config,
            state: Mutex::new(State::default()),
            outbox,
            inbox: Mutex::new(Some(inbox)),
            dropped: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            undelivered: AtomicU64::new(0),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The history, newest first, paged.
    pub fn recent(&self, limit: usize, offset: usize) -> (Vec<Alert>, usize) {
        let state = self.state();
        (state.history.iter().rev().skip(offset).take(limit).cloned().collect(), state.history.len())
    }

    /// The delivery queue's receiving end (taken once, by the delivery task).
    pub(super) fn take_inbox(&self) -> Option<mpsc::Receiver<Alert>> {
        self.inbox.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Take back the history kept in `store` (and with it, when each alert last fired:
    /// a restart within the cooldown does not fire them again).
    pub fn load(&self, store: &dyn Store) -> Result<usize, Error> {
        let Some(json) = store.setting_get(HISTORY_SETTING)? else { return Ok(0) };
        let kept: Vec<Alert> = smartretry::from_json(&json)?;
        let mut state = self.state();
        for a in kept.into_iter().rev().take(self.config.history).rev() {
            if let Ok(at) = time::parse_rfc3339(&a.timestamp) {
                let key = (a.alert.clone(), a.subject.clone());
                let last = state.last_fired.entry(key).or_insert(at);
                *last = (*last).max(at);
            }
            state.history.push_back(a);
        }
        Ok(state.history.len())
    }

    /// Write the history to `store` when it changed (called from the watch loop).
    pub fn save(&self, store: &dyn Store) -> Result<(), Error> {
        let json = {
            let mut state = self.state();
            if !state.unsaved {
                return Ok(());
            }
            state.unsaved = false;
            serde_json::to_string(&state.history).map_err(|e| Error::Store(e.to_string()))?
        };
        store.setting_put(HISTORY_SETTING, &json).inspect_err(|_| self.state().unsaved = true)
    }

    /// Keep the candidates whose (rule, subject) is out of its cooldown, at most
    /// `max_per_rule` per rule with the rest folded into one summary, and record them.
    fn admit(&self, candidates: Vec<Alert>, state: &mut State, now: u64) -> Vec<Alert> {
        let cooldown = self.cooldown_ms;
        let mut fired: Vec<Alert> = Vec::new();
        let mut folded: Vec<(Alert, Vec<String>)> = Vec::new();
        let stamp = time::format_rfc3339(now);
        for mut a in candidates {
            a.timestamp.clone_from(&stamp);
            let key = (a.alert.clone(), a.subject.clone());
            if state.last_fired.get(&key).is_some_and(|&at| now.saturating_sub(at) < cooldown) {
                continue;
            }
            state.last_fired.insert(key, now);
            if fired.iter().filter(|f| f.alert == a.alert).count() < self.config.max_per_rule {
                fired.push(a);
            } else {
                match folded.iter_mut().find(|(f, _)| f.alert == a.alert) {
                    Some((_, subjects)) => subjects.push(a.subject),
                    None => folded.push((a.clone(), vec![a.subject])),
                }
            }
        }
        for (first, subjects) in folded {
            let shown: Vec<&str> = subjects.iter().take(20).map(String::as_str).collect();
            let more = if subjects.len() > shown.len() { ", …" } else { "" };
            fired.push(Alert {
                subject: format!("{} more", subjects.len()),
                message: format!(
                    "{} fired for {} more subjects in this check: {}{more}",
                    first.alert,
                    subjects.len(),
                    shown.join(", ")
                ),
                value: subjects.len() as f64,
                ..first
            });
        }
        for a in &fired {
            if state.history.len() >= self.config.history {
                state.history.pop_front();
            }
            state.history.push_back(a.clone());
            state.unsaved = true;
        }
        fired
    }

    /// Raise one alert now (outside the periodic check): cooldown, history, log, delivery.
    pub fn raise(&self, alert: Alert, now: u64) -> bool {
        let fired = {
            let mut state = self.state();
            self.admit(vec![alert], &mut state, now)
        };
        let any = !fired.is_empty();
        self.publish(fired);
        any
    }

    /// Log each alert and queue it for the webhooks (never waiting: a full queue drops it
    /// and counts it).
    pub fn publish(&self, fired: Vec<Alert>) {
        let has_webhooks = !self.config.webhooks().is_empty();
        for alert in fired {
            eprintln!("alert: {}", serde_json::to_string(&alert).unwrap_or_default());
            if has_webhooks && self.outbox.try_send(alert).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Check every rule at `now`; returns the alerts that fire (cooldown applied).
    pub fn evaluate(&self, engine: &Engine, now: u64) -> Vec<Alert> {
        let c = &self.config;
        let mut candidates = Vec::new();
        let mut alert =
            |name: &str, severity: &str, subject: &str, message: String, value: f64, threshold: f64| {
                candidates.push(Alert::new(name, severity, subject, message, value, threshold, now))
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
        if let Ok(open) = engine.dead_letter_count(Some(smartretry::DeadLetterStatus::Open)) {
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
        if let (Some(drift), Some(version)) = (ml.drift(), ml.deployment.serving.as_deref()) {
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
        self.admit(candidates, &mut state, now)
    }
}

impl Alert {
    pub fn new(
        alert: &str,
        severity: &str,
        subject: &str,
        message: String,
        value: f64,
        threshold: f64,
        now: u64,
    ) -> Alert {
        Alert {
            alert: alert.into(),
            severity: severity.into(),
            subject: subject.into(),
            message,
            value,
            threshold,
            timestamp: time::format_rfc3339(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alerts(max_per_rule: usize) -> Alerts {
        Alerts::new(AlertConfig { max_per_rule, cooldown: "1m".into(), ..AlertConfig::default() }).unwrap()
    }

    fn breaker(subject: &str) -> Alert {
        Alert::new("breaker_open", "critical", subject, format!("{subject} open"), 1.0, 1.0, 0)
    }

    #[test]
    fn past_the_cap_one_check_fires_a_summary_and_cooldowns_hold_per_subject() {
        let a = alerts(3);
        let candidates: Vec<Alert> = (0..300).map(|i| breaker(&format!("svc{i}"))).collect();
        let fired = a.admit(candidates.clone(), &mut a.state(), 1_000);
        assert_eq!(fired.len(), 4, "three by name, one summary");
        let summary = &fired[3];
        assert_eq!((summary.subject.as_str(), summary.value), ("297 more", 297.0));
        assert!(
            summary.message.contains("svc3, svc4") && summary.message.ends_with(", …"),
            "{}",
            summary.message
        );
        assert!(a.admit(candidates.clone(), &mut a.state(), 30_000).is_empty(), "within the cooldown");
        assert_eq!(a.admit(candidates, &mut a.state(), 61_000).len(), 4, "after it");
        assert_eq!(a.recent(100, 0).1, 8);
    }

    #[test]
    fn the_history_is_kept_in_the_store_and_restores_the_cooldowns() {
        let store = smartretry::store::MemoryStore::default();
        let now = time::now_ms();
        let a = alerts(10);
        assert!(a.raise(breaker("payments"), now));
        a.save(&store).unwrap();
        let b = alerts(10);
        assert_eq!(b.load(&store).unwrap(), 1);
        assert_eq!(b.recent(10, 0).0[0].subject, "payments");
        let again = Alert { timestamp: time::format_rfc3339(now + 1_000), ..breaker("payments") };
        assert!(!b.raise(again, now + 1_000), "the restored cooldown holds");
    }
}
