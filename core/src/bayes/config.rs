use serde::{Deserialize, Serialize};

/// Tuning of the Bayesian tier: the config's `bayesian` section (the API document's
/// sample thresholds by default), with the strategy's `bayesian_threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BayesConfig {
    /// A plan earlier than the rules needs this confidence: the strategy's
    /// `bayesian_threshold` (set by [`Strategy::bayes`](crate::Strategy::bayes); not a
    /// field of the `bayesian` section).
    #[serde(skip)]
    pub threshold: f64,
    pub min_samples: u32,
    pub refit_every: u32,
    pub full_confidence_samples: u32,
    /// Evidence halves in weight after this many newer outcomes of a key (drift).
    pub half_life_samples: u32,
    /// Cost of one retry as a fraction of the key's median recovery time (load vs latency)…
    pub retry_cost: f64,
    /// …and at least this many ms.
    pub min_retry_cost_ms: u64,
    /// Cost of losing a job when attempts run out, in median recovery times…
    pub lost_job_cost: f64,
    /// …and at least this many ms: the default deadline (set by
    /// [`Strategy::bayes`](crate::Strategy::bayes) from the guardrails; not a field of the
    /// `bayesian` section). A lost job is a dead letter someone must find and replay,
    /// which costs what waiting out its whole deadline would.
    #[serde(skip)]
    pub lost_job_ms: f64,
    /// Share of learned retries moved earlier (to 40–100 % of the planned delay) to keep
    /// learning how soon jobs recover: a curve only knows the times somebody tried.
    pub explore_rate: f64,
    /// Learn each tenant's recovery apart, so a noisy tenant cannot slow quiet ones.
    pub tenant_scopes: bool,
    /// Learn recovery per hour of day (maintenance windows).
    pub hour_scopes: bool,
    /// Learn recovery apart for failures that begin while the downstream is degraded
    /// (an outage, a maintenance window) and while it is healthy (a blip).
    pub state_scopes: bool,
    /// Outcomes a tenant or hour view needs before it is preferred to the whole key.
    pub scope_min_samples: u32,
}

impl Default for BayesConfig {
    fn default() -> Self {
        BayesConfig {
            threshold: 0.70,
            min_samples: 10,
            refit_every: 20,
            full_confidence_samples: 50,
            half_life_samples: 400,
            retry_cost: 0.25,
            min_retry_cost_ms: 250,
            lost_job_cost: 10.0,
            lost_job_ms: crate::guard::DEFAULT_DEADLINE_MS as f64,
            explore_rate: 0.03,
            tenant_scopes: true,
            hour_scopes: false,
            state_scopes: true,
            scope_min_samples: 20,
        }
    }
}
