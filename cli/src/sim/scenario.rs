//! What a simulated downstream does, described as data (JSON) so users can describe
//! their own. Every random draw about a job (arrival, whether it fails, when it would
//! recover) is made once from the seed, so every policy faces exactly the same jobs.

use serde::{Deserialize, Serialize};
use smartretry::{mix64, rand01};

/// 2025-01-15T00:00:00Z: virtual time starts at a known midnight.
pub const DEFAULT_START_MS: u64 = 1_736_899_200_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub job_type: String,
    /// Distinct job types: call `k` is of type `{job_type}_{k % job_types}`, each its own
    /// downstream (its own rate-limit windows) and learned apart by the engine. 1 = all
    /// calls are `job_type`.
    #[serde(default = "one")]
    pub job_types: u32,
    /// Calls made (most succeed at once; the failed ones are the jobs measured).
    pub calls: u32,
    /// Mean time between calls (exponential gaps). Give this or `burst`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub arrival_ms: u64,
    /// Calls arrive in bursts instead: see [`Burst`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<Burst>,
    #[serde(default = "default_start")]
    pub start_ms: u64,
    /// Failed jobs left out of the figures while policies warm up (a fraction).
    #[serde(default = "default_warmup")]
    pub warmup: f64,
    #[serde(default)]
    pub tenants: Vec<Tenant>,
    pub downstream: Downstream,
    /// How long a failed job may take, from its first failure: no attempt starts later,
    /// and a job not recovered by then is lost (a dead letter someone must replay). The
    /// restricted mean time to success counts a lost job at the deadline.
    #[serde(default = "default_deadline")]
    pub deadline_ms: u64,
    /// Whether the host reports first-attempt successes to the policy. An HTTP API user
    /// records only retries (`false`); the libraries count successes too (`true`).
    #[serde(default = "yes")]
    pub reports_first_successes: bool,
}

/// Arrivals in bursts: every `every_ms` (from the start), `size` calls spread at random
/// over `spread_ms`, until `calls` are made. Drawn from the seed like everything else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Burst {
    pub every_ms: u64,
    pub size: u32,
    #[serde(default)]
    pub spread_ms: u64,
}

/// What each field of a scenario file means (printed by `simulate --list`).
pub const FIELDS: &[(&str, &str)] = &[
    ("name", "the scenario's name (required)"),
    ("description", "what it models"),
    ("job_type", "the job type the engine sees (required)"),
    ("job_types", "distinct job types (default 1): call k is of type {job_type}_{k % job_types}, each its own downstream"),
    ("calls", "calls made, 1–2,000,000 (required); the failed ones are the jobs measured"),
    ("arrival_ms", "mean gap between calls (exponential gaps); give this or burst"),
    ("burst", "{every_ms, size, spread_ms}: every every_ms a burst of size calls spread at random over spread_ms"),
    ("start_ms", "virtual start time, Unix ms (default 2025-01-15T00:00:00Z)"),
    ("warmup", "share of failed jobs left out of the figures while policies learn (default 0.2)"),
    ("tenants", "[{name, weight, failure?}]: tenants drawn by weight, optionally with their own failure"),
    ("downstream", "how calls fail: {kind: transient | outages | rate_limit, ...} (required)"),
    ("downstream.transient", "{failure, drift?, drift_after?}: each call fails with failure.probability and recovers on its own clock"),
    ("downstream.outages", "{windows: [{from_ms, to_ms}], daily?: {hour, minute, duration_ms}, status?, error_class, background?}"),
    ("downstream.rate_limit", "{window_ms, limit, retry_after_probability}: at most limit calls per window, the rest 429"),
    ("failure", "{probability, status?, error_class, recovery: [{weight, after: uniform, min_ms, max_ms} | {weight, after: never}]}"),
    ("deadline_ms", "a failed job's deadline from its first failure (default 1800000 = 30 min): later it is lost, and costs the deadline"),
    ("reports_first_successes", "false for a host that records retries only, never first-attempt successes (an HTTP API user); default true"),
];

fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// 30 minutes: the default deadline of a failed job.
pub const DEFAULT_DEADLINE_MS: u64 = 1_800_000;
const MAX_DEADLINE_MS: u64 = 7 * 86_400_000;

fn default_deadline() -> u64 {
    DEFAULT_DEADLINE_MS
}

fn default_start() -> u64 {
    DEFAULT_START_MS
}

fn default_warmup() -> f64 {
    0.2
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    pub name: String,
    pub weight: f64,
    /// This tenant's own transient failures, instead of the downstream's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

/// How the downstream fails.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Downstream {
    /// Each call fails with some probability; a failed job recovers on its own clock.
    /// After `drift_after` (a fraction of the calls), `drift` replaces `failure`.
    Transient {
        failure: Failure,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        drift: Option<Failure>,
        #[serde(default = "default_drift_after")]
        drift_after: f64,
    },
    /// The downstream is down during windows (every call fails), plus background noise.
    Outages {
        #[serde(default)]
        windows: Vec<Window>,
        /// A daily window (maintenance): start hour and minute (UTC) and length.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        daily: Option<Daily>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        error_class: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        background: Option<Failure>,
    },
    /// At most `limit` calls per fixed window; the rest get 429, some with `Retry-After`.
    RateLimit { window_ms: u64, limit: u32, retry_after_probability: f64 },
}

fn default_drift_after() -> f64 {
    0.5
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Offsets from the scenario start.
    pub from_ms: u64,
    pub to_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Daily {
    pub hour: u8,
    #[serde(default)]
    pub minute: u8,
    pub duration_ms: u64,
}

/// A transient failure: its probability, what it looks like, when it clears.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    pub probability: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub error_class: String,
    /// A mixture of recovery times after the first failure.
    pub recovery: Vec<Recovery>,
}

/// One part of a recovery mixture: `{"weight": 0.8, "after": "uniform", "min_ms": …,
/// "max_ms": …}` or `{"weight": 0.2, "after": "never"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "RecoveryJson", into = "RecoveryJson")]
pub struct Recovery {
    pub weight: f64,
    pub after: After,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum After {
    Uniform { min_ms: u64, max_ms: u64 },
    Never,
}

/// [`Recovery`]'s JSON: one flat object, unknown fields refused (serde cannot refuse
/// them through a flattened field).
#[derive(Serialize, Deserialize)]
#[serde(tag = "after", rename_all = "snake_case", deny_unknown_fields)]
enum RecoveryJson {
    Uniform { weight: f64, min_ms: u64, max_ms: u64 },
    Never { weight: f64 },
}

impl From<RecoveryJson> for Recovery {
    fn from(json: RecoveryJson) -> Recovery {
        match json {
            RecoveryJson::Uniform { weight, min_ms, max_ms } => {
                Recovery { weight, after: After::Uniform { min_ms, max_ms } }
            }
            RecoveryJson::Never { weight } => Recovery { weight, after: After::Never },
        }
    }
}

impl From<Recovery> for RecoveryJson {
    fn from(r: Recovery) -> RecoveryJson {
        match r.after {
            After::Uniform { min_ms, max_ms } => RecoveryJson::Uniform { weight: r.weight, min_ms, max_ms },
            After::Never => RecoveryJson::Never { weight: r.weight },
        }
    }
}

/// One call, drawn from the seed before any policy runs.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: u32,
    pub at_ms: u64,
    /// Which of the scenario's job types (`id % job_types`).
    pub job_type: u32,
    pub tenant: Option<String>,
    /// `Some` when the first attempt fails for a reason of the job's own (transient).
    pub transient: Option<TransientFailure>,
}

#[derive(Debug, Clone)]
pub struct TransientFailure {
    pub status: Option<u16>,
    pub error_class: String,
    /// Since the first failure; `None` = never.
    pub recovers_after_ms: Option<u64>,
}

/// A small deterministic random source (SplitMix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(mix64(seed))
    }

    pub fn uniform(&mut self) -> f64 {
        self.0 = mix64(self.0);
        rand01(self.0)
    }
}

impl Failure {
    fn draw(&self, rng: &mut Rng) -> Option<TransientFailure> {
        if rng.uniform() >= self.probability {
            return None;
        }
        let total: f64 = self.recovery.iter().map(|r| r.weight).sum();
        let mut pick = rng.uniform() * total;
        let mut after = &After::Never;
        for r in &self.recovery {
            after = &r.after;
            if pick < r.weight {
                break;
            }
            pick -= r.weight;
        }
        let u = rng.uniform();
        let recovers_after_ms = match after {
            After::Uniform { min_ms, max_ms } => Some(min_ms + ((max_ms - min_ms) as f64 * u) as u64),
            After::Never => None,
        };
        Some(TransientFailure {
            status: self.status,
            error_class: self.error_class.clone(),
            recovers_after_ms,
        })
    }

    fn validate(&self, field: &str) -> Result<(), String> {
        if !(0.0..=1.0).contains(&self.probability) {
            return Err(format!("{field}.probability: must be 0–1"));
        }
        if self.recovery.is_empty() || self.recovery.iter().any(|r| r.weight.is_nan() || r.weight <= 0.0) {
            return Err(format!("{field}.recovery: needs parts with positive weights"));
        }
        for r in &self.recovery {
            if let After::Uniform { min_ms, max_ms } = r.after {
                if min_ms > max_ms {
                    return Err(format!("{field}.recovery: min_ms > max_ms"));
                }
            }
        }
        Ok(())
    }
}

impl Scenario {
    pub fn from_json(text: &str) -> Result<Scenario, String> {
        let s: Scenario = smartretry::from_json_strict(text).map_err(|e| e.to_string())?;
        s.validate()?;
        Ok(s)
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() || self.job_type.trim().is_empty() {
            return Err("name and job_type must not be empty".into());
        }
        if self.calls == 0 || self.calls > 2_000_000 {
            return Err("calls: must be 1–2,000,000".into());
        }
        match &self.burst {
            None if self.arrival_ms == 0 => {
                return Err("arrival_ms: must be > 0 (the mean gap between calls), or give burst".into())
            }
            Some(_) if self.arrival_ms > 0 => {
                return Err("arrival_ms: give arrival_ms or burst, not both".into())
            }
            Some(b) if b.every_ms == 0 || b.size == 0 => {
                return Err("burst: every_ms and size must be > 0".into())
            }
            Some(b) if b.spread_ms > b.every_ms => {
                return Err("burst.spread_ms: must not exceed every_ms (bursts would overlap)".into())
            }
            _ => {}
        }
        if self.job_types == 0 || self.job_types > 10_000 {
            return Err("job_types: must be 1–10,000".into());
        }
        if self.deadline_ms == 0 || self.deadline_ms > MAX_DEADLINE_MS {
            return Err("deadline_ms: must be 1 ms – 7 days".into());
        }
        if !(0.0..1.0).contains(&self.warmup) {
            return Err("warmup: must be in [0, 1)".into());
        }
        for (i, t) in self.tenants.iter().enumerate() {
            if t.weight.is_nan() || t.weight <= 0.0 {
                return Err(format!("tenants[{i}].weight: must be > 0"));
            }
            if let Some(f) = &t.failure {
                f.validate(&format!("tenants[{i}].failure"))?;
            }
        }
        match &self.downstream {
            Downstream::Transient { failure, drift, .. } => {
                failure.validate("downstream.failure")?;
                if let Some(d) = drift {
                    d.validate("downstream.drift")?;
                }
            }
            Downstream::Outages { background, .. } => {
                if let Some(b) = background {
                    b.validate("downstream.background")?;
                }
            }
            Downstream::RateLimit { window_ms, limit, retry_after_probability } => {
                if *window_ms == 0 || *limit == 0 || !(0.0..=1.0).contains(retry_after_probability) {
                    return Err(
                        "downstream: window_ms and limit must be > 0, retry_after_probability 0–1".into()
                    );
                }
            }
        }
        Ok(())
    }

    /// The job type names, indexed by [`Job::job_type`].
    pub fn job_type_names(&self) -> Vec<String> {
        if self.job_types <= 1 {
            return vec![self.job_type.clone()];
        }
        (0..self.job_types).map(|k| format!("{}_{k}", self.job_type)).collect()
    }

    /// When each call of a bursty scenario arrives, in order (drawn apart from the rest).
    fn burst_arrivals(&self, burst: &Burst, seed: u64) -> Vec<u64> {
        let mut rng = Rng::new(seed ^ 0xb425_7a11);
        let mut out = Vec::with_capacity(self.calls as usize);
        let mut start = self.start_ms;
        while out.len() < self.calls as usize {
            let size = (burst.size as usize).min(self.calls as usize - out.len());
            let mut offsets: Vec<u64> =
                (0..size).map(|_| (rng.uniform() * burst.spread_ms as f64) as u64).collect();
            offsets.sort_unstable();
            out.extend(offsets.into_iter().map(|o| start + o));
            start += burst.every_ms;
        }
        out
    }

    /// The calls of this scenario for `seed`, identical for every policy.
    pub fn jobs(&self, seed: u64) -> Vec<Job> {
        let mut rng = Rng::new(seed ^ 0x5ce7_a710);
        let total_weight: f64 = self.tenants.iter().map(|t| t.weight).sum();
        let bursts = self.burst.as_ref().map(|b| self.burst_arrivals(b, seed));
        let mut at = self.start_ms;
        (0..self.calls)
            .map(|id| {
                at = match &bursts {
                    Some(arrivals) => arrivals[id as usize],
                    None => at + (-(1.0 - rng.uniform()).ln() * self.arrival_ms as f64) as u64,
                };
                let tenant = (!self.tenants.is_empty()).then(|| {
                    let mut pick = rng.uniform() * total_weight;
                    let mut chosen = &self.tenants[0];
                    for t in &self.tenants {
                        chosen = t;
                        if pick < t.weight {
                            break;
                        }
                        pick -= t.weight;
                    }
                    chosen
                });
                let failure = match (&self.downstream, tenant.and_then(|t| t.failure.as_ref())) {
                    (_, Some(own)) => Some(own),
                    (Downstream::Transient { failure, drift, drift_after }, None) => {
                        let drifted = f64::from(id) >= drift_after * f64::from(self.calls);
                        Some(drift.as_ref().filter(|_| drifted).unwrap_or(failure))
                    }
                    (Downstream::Outages { background, .. }, None) => background.as_ref(),
                    (Downstream::RateLimit { .. }, None) => None,
                };
                let transient = failure.and_then(|f| f.draw(&mut rng));
                Job {
                    id,
                    at_ms: at,
                    job_type: id % self.job_types.max(1),
                    tenant: tenant.map(|t| t.name.clone()),
                    transient,
                }
            })
            .collect()
    }

    /// When the downstream is down (absolute ms windows), over the scenario's span.
    pub fn outage_windows(&self, until_ms: u64) -> Vec<(u64, u64)> {
        let Downstream::Outages { windows, daily, .. } = &self.downstream else {
            return Vec::new();
        };
        let mut out: Vec<(u64, u64)> =
            windows.iter().map(|w| (self.start_ms + w.from_ms, self.start_ms + w.to_ms)).collect();
        if let Some(d) = daily {
            let day = 86_400_000;
            let offset = u64::from(d.hour) * 3_600_000 + u64::from(d.minute) * 60_000;
            let mut start = self.start_ms - self.start_ms % day + offset;
            while start < until_ms {
                out.push((start, start + d.duration_ms));
                start += day;
            }
        }
        out.sort_unstable();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::builtin;

    fn bursty(calls: u32, burst: Burst) -> Scenario {
        Scenario {
            calls,
            arrival_ms: 0,
            burst: Some(burst),
            ..builtin().into_iter().find(|s| s.name == "burst_rate_limit_all_retry_after").unwrap()
        }
    }

    #[test]
    fn bursts_come_every_period_with_their_size_spread_as_told() {
        let s = bursty(25, Burst { every_ms: 60_000, size: 10, spread_ms: 2_000 });
        s.validate().unwrap();
        let jobs = s.jobs(3);
        let per_burst = |k: u64| {
            let from = s.start_ms + k * 60_000;
            jobs.iter().filter(|j| j.at_ms >= from && j.at_ms < from + 2_000).count()
        };
        assert_eq!((per_burst(0), per_burst(1), per_burst(2)), (10, 10, 5), "the last burst takes the rest");
        assert!(jobs.windows(2).all(|w| w[0].at_ms <= w[1].at_ms), "ids in order of arrival");
        assert_eq!(
            jobs.iter().map(|j| j.at_ms).collect::<Vec<_>>(),
            s.jobs(3).iter().map(|j| j.at_ms).collect::<Vec<_>>()
        );
        assert_ne!(jobs[0].at_ms, s.jobs(4)[0].at_ms, "another seed, other offsets");
    }

    #[test]
    fn arrivals_take_a_gap_or_bursts_never_both() {
        let both =
            Scenario { arrival_ms: 100, ..bursty(10, Burst { every_ms: 1_000, size: 5, spread_ms: 0 }) };
        assert!(both.validate().unwrap_err().contains("not both"));
        let overlapping = bursty(10, Burst { every_ms: 1_000, size: 5, spread_ms: 2_000 });
        assert!(overlapping.validate().unwrap_err().starts_with("burst.spread_ms"));
        let none = Scenario { burst: None, ..both };
        assert_eq!(none.validate(), Ok(()));
        assert!(Scenario { arrival_ms: 0, ..none }.validate().unwrap_err().starts_with("arrival_ms"));
    }

    #[test]
    fn job_types_cycle_over_the_calls_with_their_own_names() {
        let one = builtin().remove(0);
        assert_eq!(one.job_type_names(), vec!["payment_capture".to_string()]);
        assert!(one.jobs(1).iter().all(|j| j.job_type == 0));
        let cold = builtin().into_iter().find(|s| s.name == "cold_start").unwrap();
        let names = cold.job_type_names();
        assert_eq!((names.len(), names[7].as_str()), (50, "webhook_7"));
        assert!(cold.jobs(1).iter().all(|j| j.job_type == j.id % 50));
        assert!(Scenario { job_types: 0, ..cold }.validate().unwrap_err().starts_with("job_types"));
    }

    #[test]
    fn builtin_scenarios_are_valid_distinct_described_and_survive_json() {
        let all = builtin();
        for s in &all {
            s.validate().unwrap_or_else(|e| panic!("{}: {e}", s.name));
            assert!(s.description.len() > 30, "{}: say what it models", s.name);
            let back = Scenario::from_json(&serde_json::to_string(s).unwrap()).unwrap();
            assert_eq!(&back, s);
        }
        let mut names: Vec<&str> = all.iter().map(|s| s.name.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        assert!(all.iter().any(|s| !s.reports_first_successes));
    }

    #[test]
    fn unknown_fields_are_refused_and_named_at_any_depth() {
        let file = |recovery: &str| {
            format!(
                r#"{{"name": "x", "job_type": "y", "calls": 10, "arrival_ms": 5, "downstream": {{"kind": "transient",
                    "failure": {{"probability": 0.3, "error_class": "timeout", "recovery": [{recovery}]}}}}}}"#
            )
        };
        assert!(Scenario::from_json(&file(r#"{"weight": 1, "after": "never"}"#)).is_ok());
        let err = Scenario::from_json(&file(r#"{"weight": 1, "after": "never", "max_ms": 3}"#)).unwrap_err();
        assert!(err.contains("unknown field `max_ms`"), "{err}");
        let err = Scenario::from_json(&file(r#"{"weight": 1, "after": "uniform", "min_ms": 1, "maxms": 3}"#))
            .unwrap_err();
        assert!(err.contains("unknown field `maxms`"), "{err}");
    }

    /// `--list` documents every field a scenario file may have.
    #[test]
    fn every_scenario_field_is_documented() {
        let full = Scenario {
            tenants: vec![Tenant { name: "t".into(), weight: 1.0, failure: None }],
            ..bursty(10, Burst { every_ms: 1_000, size: 5, spread_ms: 10 })
        };
        let serde_json::Value::Object(fields) = serde_json::to_value(&full).unwrap() else { panic!() };
        for key in fields.keys().map(String::as_str).chain(["arrival_ms"]) {
            assert!(FIELDS.iter().any(|(k, _)| *k == key), "{key} is not in FIELDS");
        }
        for (key, _) in FIELDS {
            let top = key.split('.').next().unwrap();
            assert!(
                fields.contains_key(top) || ["arrival_ms", "failure"].contains(&top),
                "{key} is no field"
            );
        }
    }
}
