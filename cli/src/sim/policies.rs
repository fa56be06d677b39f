//! The policies compared: the static baselines users run today, and smartretry (the real
//! engine, rules only or learning).

use smartretry::{Attempt, Config, Engine, Features};

use super::scenario::Rng;

/// What a policy sees when an attempt fails.
#[derive(Debug, Clone)]
pub struct FailureView<'a> {
    pub job_type: &'a str,
    pub job_id: u32,
    pub tenant: Option<&'a str>,
    /// The attempt that just failed (1-based).
    pub attempt: u32,
    pub now_ms: u64,
    pub since_first_failure_ms: u64,
    /// How long the job waited before this attempt (0 for the first).
    pub delay_ms: u64,
    pub status: Option<u16>,
    pub error_class: &'a str,
    pub retry_after_ms: Option<u64>,
}

/// What a policy learns when a retry finishes.
#[derive(Debug, Clone)]
pub struct OutcomeView<'a> {
    pub failure: FailureView<'a>,
    pub success: bool,
    /// The failure this retry was for (what it is learned under).
    pub retried_error_class: &'a str,
    pub retried_status: Option<u16>,
}

/// How long to wait before the next attempt, and how often to check in meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    pub delay_ms: u64,
    /// Ask [`Policy::released`] this often while waiting; retry at once when it says so.
    pub check_in_ms: Option<u64>,
}

impl Wait {
    pub fn sleep(delay_ms: u64) -> Wait {
        Wait { delay_ms, check_in_ms: None }
    }
}

pub trait Policy {
    fn name(&self) -> &str;
    /// An attempt failed: how long to wait before the next, or `None` to give up.
    fn on_failure(&mut self, failure: &FailureView<'_>) -> Option<Wait>;
    /// A waiting job checks in: has the downstream come back since it failed at
    /// `failed_at_ms`, so it should retry now?
    fn released(&mut self, _job_type: &str, _failed_at_ms: u64, _now_ms: u64) -> bool {
        false
    }
    /// A retry finished.
    fn on_outcome(&mut self, _outcome: &OutcomeView<'_>) {}
    /// A first attempt succeeded.
    fn on_first_success(&mut self, _job_type: &str, _tenant: Option<&str>, _now_ms: u64) {}
}

/// A fixed schedule: the delay before retry `n` (1-based), up to `max_attempts` attempts.
/// Like most code in the wild, it retries every failure and ignores `Retry-After`.
pub struct Static {
    name: &'static str,
    max_attempts: u32,
    delay: fn(u32, &mut Rng) -> u64,
    rng: Rng,
}

impl Policy for Static {
    fn name(&self) -> &str {
        self.name
    }

    fn on_failure(&mut self, f: &FailureView<'_>) -> Option<Wait> {
        (f.attempt < self.max_attempts).then(|| Wait::sleep((self.delay)(f.attempt, &mut self.rng)))
    }
}

/// Attempts the static baselines make (and smartretry's default policies).
pub const ATTEMPTS: u32 = 6;

/// The static baselines.
pub fn baselines(seed: u64) -> Vec<Box<dyn Policy>> {
    let make = |name, max_attempts, delay: fn(u32, &mut Rng) -> u64| -> Box<dyn Policy> {
        Box::new(Static { name, max_attempts, delay, rng: Rng::new(seed ^ 0xba5e) })
    };
    vec![
        // The documents' "traditional approach": 2 s → 4 s → 8 s → 16 s → 32 s.
        make("traditional_2s_doubling", ATTEMPTS, |n, _| 2_000 << (n - 1).min(20)),
        // AWS "full jitter": uniform(0, min(cap, base · 2^n)), base 1 s, cap 60 s.
        make("exponential_full_jitter", ATTEMPTS, |n, rng| {
            (rng.uniform() * (1_000u64 << n.min(20)).min(60_000) as f64) as u64
        }),
        // tenacity's wait_random_exponential(multiplier=1, max=60), stop_after_attempt(6).
        make("tenacity_random_exponential", ATTEMPTS, |n, rng| {
            (rng.uniform() * (1_000u64 << (n - 1).min(20)).min(60_000) as f64) as u64
        }),
        // The API document's fallback policy: 3 attempts, 1 s doubling, 30 s cap, ±15 %.
        make("api_fallback_policy", 3, |n, rng| {
            let d = (1_000u64 << (n - 1).min(20)).min(30_000) as f64;
            (d * (1.0 + (2.0 * rng.uniform() - 1.0) * 0.15)) as u64
        }),
    ]
}

/// The default policies at the API document's attempts (3 for 503s, timeouts and the
/// fallback, 5 for 429s), as smartretry shipped them before its defaults matched the
/// static schedules' six: what a count that ignores the deadline loses.
pub fn document_attempts(mut config: Config) -> Config {
    for p in config.strategy.policies.iter_mut().filter(|p| p.retries()) {
        p.max_attempts = if p.name == "rate_limit" { 5 } else { 3 };
    }
    config
}

/// smartretry itself: every decision comes from the engine.
pub struct SmartRetry {
    name: &'static str,
    engine: Engine,
    /// First-attempt successes not yet reported (hosts batch them too).
    pending_successes: u64,
    last_job_type: String,
    /// Every recorded attempt, when asked for (training data for the ML tier).
    pub history: Option<Vec<Attempt>>,
}

impl SmartRetry {
    /// The headline row's name: the engine exactly as a user gets it.
    pub const HEADLINE: &'static str = "smartretry";

    /// The engine exactly as a user gets it: `Config::default()`, its default policies
    /// and attempts (6, a 30-minute deadline), learning on.
    pub fn learning(seed: u64) -> SmartRetry {
        SmartRetry::with_config(SmartRetry::HEADLINE, Config::default(), seed)
    }

    /// The defaults at the API document's attempts ([`document_attempts`]), beside the
    /// headline row.
    pub fn document_attempts(seed: u64) -> SmartRetry {
        SmartRetry::with_config("smartretry_document_attempts", document_attempts(Config::default()), seed)
    }

    /// The learning engine with a trained model (ONNX + sidecar) deployed to every job:
    /// the ML tier decides where it may, the Bayesian tier below it where it may not.
    pub fn with_model(seed: u64, model: &std::path::Path) -> Result<SmartRetry, smartretry::Error> {
        let policy = SmartRetry::with_config("smartretry_ml", Config::default(), seed);
        let info = policy.engine.register_model_files(model, None, Some(0))?;
        policy.engine.deploy_model(&info.version, 100.0, Some(0))?;
        Ok(policy)
    }

    pub fn rules_only(seed: u64) -> SmartRetry {
        SmartRetry::with_config("smartretry_rules_only", Config { enabled: false, ..Config::default() }, seed)
    }

    /// smartretry (as users get it) with one idea switched off at a time, to measure what
    /// each buys.
    pub fn ablations(seed: u64) -> Vec<SmartRetry> {
        let with = |name, change: fn(&mut Config)| {
            let mut config = Config::default();
            change(&mut config);
            SmartRetry::with_config(name, config, seed)
        };
        vec![
            SmartRetry::learning(seed),
            with("without_state_views", |c| c.strategy.bayesian.state_scopes = false),
            with("without_tenant_views", |c| c.strategy.bayesian.tenant_scopes = false),
            with("with_hour_views", |c| c.strategy.bayesian.hour_scopes = true),
            with("without_exploration", |c| c.strategy.bayesian.explore_rate = 0.0),
            with("without_retry_after", |c| c.strategy.guardrails.respect_retry_after = false),
            with("without_forgetting", |c| c.strategy.bayesian.half_life_samples = 1_000_000),
            with("without_probe_and_release", |c| c.strategy.guardrails.probe_and_release = false),
            SmartRetry::rules_only(seed),
        ]
    }

    pub fn with_config(name: &'static str, config: Config, seed: u64) -> SmartRetry {
        let engine = Engine::builder()
            .config(config)
            .seed(seed)
            .build()
            .unwrap_or_else(|_| Engine::builder().seed(seed).build().unwrap_or_default());
        SmartRetry { name, engine, pending_successes: 0, last_job_type: String::new(), history: None }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn flush(&mut self, now_ms: u64) {
        if self.pending_successes > 0 {
            let _ =
                self.engine.record_successes(&self.last_job_type, None, self.pending_successes, Some(now_ms));
            self.pending_successes = 0;
        }
    }
}

impl Policy for SmartRetry {
    fn name(&self) -> &str {
        self.name
    }

    /// The one place the simulated host talks to the engine about a failure: what it
    /// tells it (`Features`, as a decorator or HTTP client would fill them) and what it
    /// does with the answer. Per-job host state the engine asks hosts to keep and pass
    /// back (attempts that did not count, a deadline) belongs here too.
    fn on_failure(&mut self, f: &FailureView<'_>) -> Option<Wait> {
        self.flush(f.now_ms);
        let features = Features {
            job_id: Some(f.job_id.to_string()),
            tenant: f.tenant.map(str::to_string),
            error_class: Some(f.error_class.to_string()),
            http_status: f.status,
            since_first_failure_ms: Some(f.since_first_failure_ms),
            since_last_failure_ms: Some(f.delay_ms),
            retry_after_ms: f.retry_after_ms,
            ..Features::new(f.job_type, f.attempt)
        };
        let d = self.engine.decide(&features, Some(f.now_ms)).ok()?;
        d.should_retry.then_some(Wait { delay_ms: d.delay_ms, check_in_ms: d.check_in_ms })
    }

    fn released(&mut self, job_type: &str, failed_at_ms: u64, now_ms: u64) -> bool {
        self.flush(now_ms);
        self.engine.released(job_type, failed_at_ms, Some(now_ms)).unwrap_or(false)
    }

    fn on_outcome(&mut self, o: &OutcomeView<'_>) {
        let f = &o.failure;
        let attempt = Attempt {
            tenant: f.tenant.map(str::to_string),
            // The class of the failure being retried: what the engine learns under.
            error_class: Some(o.retried_error_class.to_string()),
            http_status: o.retried_status,
            delay_ms: f.delay_ms,
            since_first_failure_ms: Some(f.since_first_failure_ms),
            now_ms: Some(f.now_ms),
            ..Attempt::new(f.job_id.to_string(), f.job_type, f.attempt, o.success)
        };
        let _ = self.engine.record(&attempt, Some(f.now_ms));
        if let Some(history) = &mut self.history {
            history.push(attempt);
        }
    }

    fn on_first_success(&mut self, job_type: &str, tenant: Option<&str>, now_ms: u64) {
        if tenant.is_some() {
            let _ = self.engine.record_successes(job_type, tenant, 1, Some(now_ms));
            return;
        }
        if self.last_job_type != job_type {
            self.flush(now_ms);
            self.last_job_type = job_type.to_string();
        }
        self.pending_successes += 1;
        if self.pending_successes >= 64 {
            self.flush(now_ms);
        }
    }
}
