//! What operators set: the hard limits of the API document plus the budget, fairness,
//! throttling, concurrency and priority settings, each checked when it is set. The
//! state these settings govern is `GuardState`'s.

use serde::{Deserialize, Serialize};

use crate::api::Priority;
use crate::error::{Error, Result};

/// Hard limits, in the API document's shape plus the budget, fairness, throttling and
/// concurrency settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Guardrails {
    pub max_attempts: u32,
    pub max_delay_ms: u64,
    pub min_delay_ms: u64,
    /// Retries as a percentage of first attempts in `budget_window_ms`.
    pub max_budget_percent: f64,
    pub per_tenant_limits: bool,
    pub emergency_stop: bool,
    /// Every decision carries its rationale and the guardrails that acted: the engine
    /// always explains, so this must be `true` (the API document's field, checked).
    pub explainability_required: bool,
    pub budget_window_ms: u64,
    pub min_retries_per_sec: f64,
    pub tenant_max_share: f64,
    /// Total time from the first failure after which no retry starts, whatever a call,
    /// a policy or an override says (an operator's hard limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_total_ms: Option<u64>,
    /// The deadline of a job whose call, policy and overrides name none, from its first
    /// failure: a job ends by it, not by a count alone (holds while a downstream is down
    /// may run to it), and a job lost past it is a dead letter someone must replay.
    pub default_deadline_ms: u64,
    pub respect_retry_after: bool,
    pub adaptive_throttle: bool,
    pub throttle_k: f64,
    pub throttle_window_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrent_retries: Option<u32>,
    /// How long after its scheduled time a retry that never reported counts as done.
    pub in_flight_ttl_ms: u64,
    /// While a downstream is down for every caller, jobs take turns to probe it and the
    /// rest wait to be released (`Decision::check_in_ms`, `Engine::released`).
    pub probe_and_release: bool,
    /// The share of the retry budget and of concurrency caps each priority may use;
    /// the rest is kept for higher priorities. Calls that state no priority are not
    /// ranked and may use all of it.
    pub priority_shares: PriorityShares,
}

/// Shares (0–1) of the budget and caps per priority, non-decreasing from low to critical.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PriorityShares {
    pub low: f64,
    pub normal: f64,
    pub high: f64,
    pub critical: f64,
}

impl Default for PriorityShares {
    fn default() -> Self {
        PriorityShares { low: 0.5, normal: 0.8, high: 0.9, critical: 1.0 }
    }
}

impl PriorityShares {
    /// The share of `priority` (1 when none is stated).
    pub fn of(&self, priority: Option<Priority>) -> f64 {
        match priority {
            None => 1.0,
            Some(Priority::Low) => self.low,
            Some(Priority::Normal) => self.normal,
            Some(Priority::High) => self.high,
            Some(Priority::Critical) => self.critical,
        }
    }

    fn validate(&self) -> Result<()> {
        let shares =
            [("low", self.low), ("normal", self.normal), ("high", self.high), ("critical", self.critical)];
        for (i, (name, v)) in shares.iter().enumerate() {
            if !(0.0..=1.0).contains(v) {
                return Err(Error::config(format!("priority_shares.{name}"), "must be 0–1"));
            }
            if i > 0 && *v < shares[i - 1].1 {
                return Err(Error::config(
                    format!("priority_shares.{name}"),
                    format!("must be ≥ the {} share (a higher priority never gets less)", shares[i - 1].0),
                ));
            }
        }
        Ok(())
    }
}

impl Default for Guardrails {
    fn default() -> Self {
        Guardrails {
            max_attempts: 10,
            max_delay_ms: 300_000,
            min_delay_ms: 0,
            max_budget_percent: 20.0,
            per_tenant_limits: true,
            emergency_stop: false,
            explainability_required: true,
            budget_window_ms: 60_000,
            min_retries_per_sec: 10.0,
            tenant_max_share: 0.5,
            max_total_ms: None,
            default_deadline_ms: DEFAULT_DEADLINE_MS,
            respect_retry_after: true,
            adaptive_throttle: true,
            throttle_k: 2.0,
            throttle_window_ms: 120_000,
            max_concurrent_retries: None,
            in_flight_ttl_ms: 60_000,
            probe_and_release: true,
            priority_shares: PriorityShares::default(),
        }
    }
}

const DAY_MS: u64 = 86_400_000;

/// A job's deadline when nothing names one: 30 minutes from its first failure.
pub const DEFAULT_DEADLINE_MS: u64 = 1_800_000;

impl Guardrails {
    pub fn validate(&self) -> Result<()> {
        let cfg = |field: &'static str, reason: &str| Err(Error::config(field, reason));
        if !(1..=100).contains(&self.max_attempts) {
            return cfg("max_attempts", "must be 1–100");
        }
        if !self.explainability_required {
            return cfg(
                "explainability_required",
                "must be true: every decision carries its rationale (this engine cannot decide without explaining)",
            );
        }
        if self.max_delay_ms == 0 || self.max_delay_ms > DAY_MS {
            return cfg("max_delay_ms", "must be 1 ms – 24 h");
        }
        if self.min_delay_ms > self.max_delay_ms {
            return cfg("min_delay_ms", "must be ≤ max_delay_ms");
        }
        if !(0.0..=100.0).contains(&self.max_budget_percent) {
            return cfg("max_budget_percent", "must be 0–100");
        }
        if !(1_000..=DAY_MS).contains(&self.budget_window_ms) {
            return cfg("budget_window_ms", "must be 1 s – 24 h");
        }
        if !(self.min_retries_per_sec.is_finite() && self.min_retries_per_sec >= 0.0) {
            return cfg("min_retries_per_sec", "must be a number ≥ 0");
        }
        if !(self.tenant_max_share > 0.0 && self.tenant_max_share <= 1.0) {
            return cfg("tenant_max_share", "must be in (0, 1]");
        }
        if self.max_total_ms == Some(0) {
            return cfg("max_total_ms", "must be > 0 when set");
        }
        if !(1_000..=7 * DAY_MS).contains(&self.default_deadline_ms) {
            return cfg("default_deadline_ms", "must be 1 s – 7 days");
        }
        if !(self.throttle_k.is_finite() && self.throttle_k >= 1.0) {
            return cfg("throttle_k", "must be a number ≥ 1");
        }
        if !(1_000..=DAY_MS).contains(&self.throttle_window_ms) {
            return cfg("throttle_window_ms", "must be 1 s – 24 h");
        }
        if self.max_concurrent_retries == Some(0) {
            return cfg("max_concurrent_retries", "must be ≥ 1 when set");
        }
        if self.in_flight_ttl_ms == 0 || self.in_flight_ttl_ms > DAY_MS {
            return cfg("in_flight_ttl_ms", "must be 1 ms – 24 h");
        }
        self.priority_shares.validate()
    }

    /// These guardrails with the fields of a JSON object replaced (a partial update).
    pub fn patched(&self, patch: &serde_json::Value) -> Result<Guardrails> {
        let serde_json::Value::Object(fields) = patch else {
            return Err(Error::invalid("guardrails", "expected a JSON object"));
        };
        let mut merged =
            serde_json::to_value(self).map_err(|e| Error::invalid("guardrails", e.to_string()))?;
        if let serde_json::Value::Object(base) = &mut merged {
            for (k, v) in fields {
                base.insert(k.clone(), v.clone());
            }
        }
        let next: Guardrails = crate::api::from_value_strict(merged)?;
        next.validate()?;
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_updates_some_fields_and_names_bad_ones() {
        let g = Guardrails::default();
        let next = g.patched(&serde_json::json!({"max_attempts": 8, "max_delay_ms": 180000})).unwrap();
        assert_eq!((next.max_attempts, next.max_delay_ms, next.max_budget_percent), (8, 180_000, 20.0));
        let err = g.patched(&serde_json::json!({"max_budget_percent": 150.0})).unwrap_err();
        assert_eq!(err.field(), Some("max_budget_percent"));
        let err = g.patched(&serde_json::json!({"max_attempts": "many"})).unwrap_err();
        assert_eq!(err.field(), Some("max_attempts"));
    }
}
