//! Health-aware backoff: a 0–100 score of a downstream from the caller's signals
//! (`features.health`: latency, error rate, CPU, queue depth) and the engine's own view
//! (success rate over the throttle window, circuit breaker state). The score stretches
//! a rules-tier delay when the downstream is unhealthy and shortens it when the caller
//! reports it healthy, always within the policy's bounds.
//!
//! Factor = 2^(adaptation × (50 − score) / 50): score 50 is neutral, 0 doubles the
//! delay, 100 halves it (adaptation 1). The engine's own view alone only ever stretches:
//! going faster than the policy needs the caller's positive evidence.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::breaker::BreakerState;
use crate::error::{Error, Result};
use crate::say::{Ms, Pct};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthConfig {
    /// `false`: rules-tier delays are never adjusted for health.
    pub enabled: bool,
    /// How strongly the score bends delays: 0 = not at all, 1 = ×0.5 to ×2, 2 = ×0.25 to ×4.
    pub adaptation_factor: f64,
    /// Latency at or below this scores 100; twice it scores 50.
    pub latency_ok_ms: f64,
    /// Queue depth at or below this scores 100; twice it scores 50.
    pub queue_depth_ok: f64,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            enabled: true,
            adaptation_factor: 1.0,
            latency_ok_ms: 1_000.0,
            queue_depth_ok: 1_000.0,
        }
    }
}

impl HealthConfig {
    pub fn validate(&self) -> Result<()> {
        if !(0.0..=2.0).contains(&self.adaptation_factor) {
            return Err(Error::config("adaptation_factor", "must be 0–2"));
        }
        if !(self.latency_ok_ms.is_finite() && self.latency_ok_ms > 0.0) {
            return Err(Error::config("latency_ok_ms", "must be a number > 0"));
        }
        if !(self.queue_depth_ok.is_finite() && self.queue_depth_ok > 0.0) {
            return Err(Error::config("queue_depth_ok", "must be a number > 0"));
        }
        Ok(())
    }
}

/// The caller's health signals, read from `features.health` (names and common aliases).
/// Rates and CPU may be fractions (0–1) or percentages (0–100).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Signals {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_depth: Option<f64>,
}

impl Signals {
    pub fn from_map(health: &BTreeMap<String, f64>) -> Signals {
        let get = |names: &[&str]| names.iter().find_map(|n| health.get(*n).copied()).map(|v| v.max(0.0));
        let fraction = |v: f64| if v > 1.0 { v / 100.0 } else { v }.min(1.0);
        Signals {
            latency_ms: get(&["latency_ms", "downstream_latency_p95", "latency_p95_ms", "latency"]),
            error_rate: get(&["error_rate"]).map(fraction),
            cpu: get(&["cpu", "cpu_utilization"]).map(fraction),
            queue_depth: get(&["queue_depth", "queue_length"]),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.latency_ms.is_none()
            && self.error_rate.is_none()
            && self.cpu.is_none()
            && self.queue_depth.is_none()
    }
}

/// What the engine itself saw of a downstream.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct View {
    /// Accepted / requests over the throttle window, once there are enough requests.
    pub success_rate: Option<f64>,
    pub requests: u64,
    pub breaker: Option<BreakerState>,
}

/// A score and what went into it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    pub value: f64,
    pub signals: Signals,
    pub view: View,
}

/// The score of a downstream (0 = down, 100 = healthy), or `None` with nothing to go on.
pub fn score(signals: Signals, view: View, cfg: &HealthConfig) -> Option<Score> {
    let parts = [
        signals.latency_ms.map(|l| 100.0 * (cfg.latency_ok_ms / l.max(1e-9)).min(1.0)),
        signals.error_rate.map(|e| 100.0 * (1.0 - e)),
        signals.cpu.map(|c| 100.0 * (1.0 - c)),
        signals.queue_depth.map(|q| 100.0 * (cfg.queue_depth_ok / q.max(1e-9)).min(1.0)),
        view.success_rate.map(|r| 100.0 * r),
        // A closed breaker only says "not known to be failing": no evidence either way.
        view.breaker.and_then(|b| match b {
            BreakerState::Closed => None,
            BreakerState::HalfOpen => Some(50.0),
            BreakerState::Open => Some(0.0),
        }),
    ];
    let (sum, n) = parts.iter().flatten().fold((0.0, 0u32), |(s, n), p| (s + p, n + 1));
    (n > 0).then(|| Score { value: (sum / f64::from(n)).clamp(0.0, 100.0), signals, view })
}

/// The multiplier a score applies to a rules-tier delay.
pub fn factor(score: &Score, adaptation: f64) -> f64 {
    let f = 2f64.powf(adaptation * (50.0 - score.value) / 50.0);
    if score.signals.is_empty() {
        f.max(1.0)
    } else {
        f
    }
}

/// `delay` adjusted by `factor` within `[min, max]`.
pub fn adjust(delay_ms: u64, factor: f64, min_ms: u64, max_ms: u64) -> u64 {
    ((delay_ms as f64 * factor).round() as u64).clamp(min_ms, max_ms.max(min_ms))
}

impl Score {
    /// "downstream health 32/100 (success rate 40 %, breaker half-open, latency 2.5s)".
    pub fn describe(&self, out: &mut String) {
        let _ = write!(out, "downstream health {:.0}/100 (", self.value);
        let mut first = true;
        let mut part = |out: &mut String, text: std::fmt::Arguments<'_>| {
            if !first {
                out.push_str(", ");
            }
            first = false;
            let _ = out.write_fmt(text);
        };
        if let Some(r) = self.view.success_rate {
            part(out, format_args!("success rate {} of {} calls", Pct(r), self.view.requests));
        }
        match self.view.breaker {
            Some(BreakerState::HalfOpen) => part(out, format_args!("breaker half-open")),
            Some(BreakerState::Open) => part(out, format_args!("breaker open")),
            _ => {}
        }
        let s = &self.signals;
        if let Some(l) = s.latency_ms {
            part(out, format_args!("latency {}", Ms(l as u64)));
        }
        if let Some(e) = s.error_rate {
            part(out, format_args!("error rate {}", Pct(e)));
        }
        if let Some(c) = s.cpu {
            part(out, format_args!("CPU {}", Pct(c)));
        }
        if let Some(q) = s.queue_depth {
            part(out, format_args!("queue depth {q:.0}"));
        }
        out.push(')');
    }
}

/// A downstream's health as operators see it (`Engine::health`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    pub job_type: String,
    /// 0–100; absent when the engine has neither signals nor enough calls to judge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// What a rules-tier delay of this downstream is multiplied by now.
    pub delay_factor: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_rate: Option<f64>,
    /// Calls seen over the throttle window.
    pub requests: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker_state: Option<BreakerState>,
    /// The last signals a caller sent for this downstream, and when.
    pub signals: Signals,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signals_at_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(pairs: &[(&str, f64)]) -> Signals {
        Signals::from_map(&pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect())
    }

    #[test]
    fn signals_read_names_aliases_and_percentages() {
        let s = health(&[("downstream_latency_p95", 250.0), ("cpu_utilization", 85.0), ("error_rate", 0.2)]);
        assert_eq!(s.latency_ms, Some(250.0));
        assert_eq!(s.cpu, Some(0.85));
        assert_eq!(s.error_rate, Some(0.2));
        assert!(health(&[("memory", 0.5)]).is_empty());
    }

    #[test]
    fn score_is_the_mean_of_what_is_known() {
        let cfg = HealthConfig::default();
        assert!(score(Signals::default(), View::default(), &cfg).is_none());
        let s =
            score(health(&[("error_rate", 0.5), ("latency_ms", 2_000.0)]), View::default(), &cfg).unwrap();
        assert_eq!(s.value, 50.0);
        let view = View { success_rate: Some(0.2), requests: 50, breaker: Some(BreakerState::Open) };
        assert_eq!(score(Signals::default(), view, &cfg).unwrap().value, 10.0);
    }

    #[test]
    fn unhealthy_stretches_healthy_shortens_only_on_the_callers_word() {
        let cfg = HealthConfig::default();
        let sick = score(health(&[("error_rate", 1.0)]), View::default(), &cfg).unwrap();
        assert_eq!(factor(&sick, 1.0), 2.0);
        let fine = score(health(&[("cpu", 0.0)]), View::default(), &cfg).unwrap();
        assert_eq!(factor(&fine, 1.0), 0.5);
        let seen_fine =
            score(Signals::default(), View { success_rate: Some(1.0), requests: 20, breaker: None }, &cfg)
                .unwrap();
        assert_eq!(factor(&seen_fine, 1.0), 1.0, "the engine's view alone never shortens");
        assert_eq!(factor(&sick, 0.0), 1.0, "adaptation 0 turns it off");
        assert_eq!(adjust(1_000, 2.0, 0, 1_500), 1_500, "within the policy's bounds");
        assert_eq!(adjust(1_000, 0.5, 800, 5_000), 800);
    }
}
