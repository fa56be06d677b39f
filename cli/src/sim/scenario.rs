//! What a simulated downstream does, described as data (JSON) so users can describe
//! their own. Every random draw about a job (arrival, whether it fails, when it would
//! recover) is made once from the seed, so every policy faces exactly the same jobs.

use serde::{Deserialize, Serialize};
use smartretry::backoff::{mix64, rand01};

/// 2025-01-15T00:00:00Z: virtual time starts at a known midnight.
pub const DEFAULT_START_MS: u64 = 1_736_899_200_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub job_type: String,
    /// Calls made (most succeed at once; the failed ones are the jobs measured).
    pub calls: u32,
    /// Mean time between calls (exponential gaps).
    pub arrival_ms: u64,
    #[serde(default = "default_start")]
    pub start_ms: u64,
    /// Failed jobs left out of the figures while policies warm up (a fraction).
    #[serde(default = "default_warmup")]
    pub warmup: f64,
    #[serde(default)]
    pub tenants: Vec<Tenant>,
    pub downstream: Downstream,
    /// Where the restricted mean time to success stops counting (a lost job counts this
    /// long). Default: the slowest recovery any compared policy made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub horizon_ms: Option<u64>,
}

fn default_start() -> u64 {
    DEFAULT_START_MS
}

fn default_warmup() -> f64 {
    0.2
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    pub name: String,
    pub weight: f64,
    /// This tenant's own transient failures, instead of the downstream's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
}

/// How the downstream fails.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
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
pub struct Window {
    /// Offsets from the scenario start.
    pub from_ms: u64,
    pub to_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Daily {
    pub hour: u8,
    #[serde(default)]
    pub minute: u8,
    pub duration_ms: u64,
}

/// A transient failure: its probability, what it looks like, when it clears.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub probability: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub error_class: String,
    /// A mixture of recovery times after the first failure.
    pub recovery: Vec<Recovery>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recovery {
    pub weight: f64,
    #[serde(flatten)]
    pub after: After,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "after", rename_all = "snake_case")]
pub enum After {
    Uniform { min_ms: u64, max_ms: u64 },
    Never,
}

/// One call, drawn from the seed before any policy runs.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: u32,
    pub at_ms: u64,
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
        let s: Scenario = smartretry::model::from_json(text).map_err(|e| e.to_string())?;
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
        if self.arrival_ms == 0 {
            return Err("arrival_ms: must be > 0".into());
        }
        if self.horizon_ms == Some(0) {
            return Err("horizon_ms: must be > 0".into());
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

    /// The calls of this scenario for `seed`, identical for every policy.
    pub fn jobs(&self, seed: u64) -> Vec<Job> {
        let mut rng = Rng::new(seed ^ 0x5ce7_a710);
        let total_weight: f64 = self.tenants.iter().map(|t| t.weight).sum();
        let mut at = self.start_ms;
        (0..self.calls)
            .map(|id| {
                at += (-(1.0 - rng.uniform()).ln() * self.arrival_ms as f64) as u64;
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
                Job { id, at_ms: at, tenant: tenant.map(|t| t.name.clone()), transient }
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

fn uniform(weight: f64, min_ms: u64, max_ms: u64) -> Recovery {
    Recovery { weight, after: After::Uniform { min_ms, max_ms } }
}

fn never(weight: f64) -> Recovery {
    Recovery { weight, after: After::Never }
}

/// The built-in scenarios, drawn from the product documents.
pub fn builtin() -> Vec<Scenario> {
    let base =
        |name: &str, description: &str, job_type: &str, calls: u32, arrival_ms: u64, downstream| Scenario {
            name: name.into(),
            description: description.into(),
            job_type: job_type.into(),
            calls,
            arrival_ms,
            start_ms: DEFAULT_START_MS,
            warmup: 0.2,
            tenants: Vec::new(),
            downstream,
            horizon_ms: None,
        };
    let unavailable = |recovery: Vec<Recovery>| Failure {
        probability: 0.3,
        status: Some(503),
        error_class: "service_unavailable".into(),
        recovery,
    };
    vec![
        base(
            "payment_503_peak",
            "Payment API 503s at peak: 85 % recover within 6–12 s, 12 % within 12–30 s, 3 % never",
            "payment_capture",
            6_000,
            500,
            Downstream::Transient {
                failure: unavailable(vec![
                    uniform(0.85, 6_000, 12_000),
                    uniform(0.12, 12_000, 30_000),
                    never(0.03),
                ]),
                drift: None,
                drift_after: 0.5,
            },
        ),
        Scenario {
            start_ms: DEFAULT_START_MS,
            ..base(
                "db_maintenance",
                "Database timeouts during a daily 02:00–02:15 UTC maintenance window, quick blips otherwise",
                "nightly_sync",
                26_000,
                10_000,
                Downstream::Outages {
                    windows: Vec::new(),
                    daily: Some(Daily { hour: 2, minute: 0, duration_ms: 900_000 }),
                    status: None,
                    error_class: "timeout".into(),
                    background: Some(Failure {
                        probability: 0.02,
                        status: None,
                        error_class: "timeout".into(),
                        recovery: vec![uniform(1.0, 500, 3_000)],
                    }),
                },
            )
        },
        base(
            "rate_limit_429",
            "Third-party API: 40 calls per 10 s window against ~33 arriving; 429 with Retry-After on half",
            "crm_sync",
            6_000,
            300,
            Downstream::RateLimit { window_ms: 10_000, limit: 40, retry_after_probability: 0.5 },
        ),
        base(
            "recovery_drift",
            "Recovery takes 2–4 s, then halfway through drifts to 10–20 s",
            "inventory_update",
            8_000,
            500,
            Downstream::Transient {
                failure: unavailable(vec![uniform(1.0, 2_000, 4_000)]),
                drift: Some(unavailable(vec![uniform(1.0, 10_000, 20_000)])),
                drift_after: 0.5,
            },
        ),
        Scenario {
            tenants: vec![
                Tenant {
                    name: "noisy".into(),
                    weight: 0.4,
                    failure: Some(Failure {
                        probability: 0.6,
                        status: Some(503),
                        error_class: "service_unavailable".into(),
                        recovery: vec![uniform(1.0, 20_000, 40_000)],
                    }),
                },
                Tenant { name: "quiet_a".into(), weight: 0.3, failure: None },
                Tenant { name: "quiet_b".into(), weight: 0.3, failure: None },
            ],
            ..base(
                "noisy_tenant",
                "One tenant's jobs fail often and recover in 20–40 s; quiet tenants' recover in 1–3 s",
                "report_render",
                8_000,
                400,
                Downstream::Transient {
                    failure: Failure {
                        probability: 0.1,
                        status: Some(503),
                        error_class: "service_unavailable".into(),
                        recovery: vec![uniform(1.0, 1_000, 3_000)],
                    },
                    drift: None,
                    drift_after: 0.5,
                },
            )
        },
        base(
            "validation_errors",
            "10 % of calls are invalid (400): no retry can help",
            "signup",
            3_000,
            500,
            Downstream::Transient {
                failure: Failure {
                    probability: 0.1,
                    status: Some(400),
                    error_class: "validation".into(),
                    recovery: vec![never(1.0)],
                },
                drift: None,
                drift_after: 0.5,
            },
        ),
        base(
            "long_outage",
            "A 10-minute outage an hour into a two-hour run, 3 % quick blips otherwise",
            "webhook_delivery",
            7_200,
            1_000,
            Downstream::Outages {
                windows: vec![Window { from_ms: 3_600_000, to_ms: 4_200_000 }],
                daily: None,
                status: Some(503),
                error_class: "service_unavailable".into(),
                background: Some(Failure {
                    probability: 0.03,
                    status: Some(503),
                    error_class: "service_unavailable".into(),
                    recovery: vec![uniform(1.0, 1_000, 4_000)],
                }),
            },
        ),
    ]
}
