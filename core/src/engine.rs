//! The engine: classify → rules → Bayesian → guardrails, one `Decision` per failure.
//!
//! `&self` everywhere; state is behind short locks (sharded learned keys, one guardrail
//! lock, a copy-on-write settings snapshot), so one engine serves many threads. Time is
//! passed in (`now_ms`, wall clock when `None`) and randomness comes from the engine's
//! seed, so a run is reproducible from its inputs.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backoff::{mix64, rand01};
use crate::bayes::{BayesConfig, Learner, Plan, Scope, BUCKETS, BUCKET_BOUNDS_MS, BUCKET_LABELS};
use crate::breaker::{Admit, BreakerSnapshot};
use crate::classify::{classify, ErrorKind};
use crate::config::{BayesTuning, Config, Strategy};
use crate::contexts::{self, ContextSet, ContextState};
use crate::error::{Error, Result};
use crate::events::{Event, EventBus, EventKind, Subscription};
use crate::guard::{BudgetSnapshot, GuardState, Guardrails, RetryContext, Transition};
use crate::health::{self, HealthReport, Signals};
use crate::ml::{Advice, Deployment, MlSnapshot, MlStatus, MlTier, ModelInfo, Sidecar};
use crate::model::{
    Attempt, BucketStats, Decision, Features, Method, Preview, Priority, Stats, TimelineEntry,
};
use crate::overrides::{Override, OverrideSet, Resolved as Overrides};
use crate::policy::{Policy, PolicySet, Subject};
use crate::reset::Reset;
use crate::say;
use crate::say::{Ms, Pct, Two};
use crate::store::persist::{Persister, Shared};
use crate::store::{AuditRecord, HistoryRecord, HistoryStore, MemoryHistory, OutcomeRecord, Store};
use crate::time;

mod controls;
use controls::{adjust_for_health, clamp_to_overrides, fixed_delay, reserved, Controls};

/// Confidence reported for a static rules-tier delay: a heuristic, not a measurement.
pub const RULES_CONFIDENCE: f64 = 0.5;
/// A learned plan whose retry is less likely than this to succeed is not followed.
pub const MIN_PLAN_SUCCESS: f64 = 0.05;
/// Default window of `stats`.
pub const DEFAULT_STATS_WINDOW_MS: u64 = 86_400_000;
/// Most attempts a preview lays out.
pub const MAX_PREVIEW_ATTEMPTS: u32 = 100;

/// Every guardrail name that can appear in `policy_guardrails`.
pub const GUARDRAILS: [&str; 15] = [
    "emergency_stop",
    "never_retry",
    "non_idempotent",
    "max_attempts",
    "circuit_breaker",
    "retry_after",
    "min_delay",
    "max_delay",
    "deadline",
    "retry_budget",
    "tenant_fairness",
    "adaptive_throttle",
    "concurrency",
    "override",
    "probe_and_release",
];

/// Called with a sample of decisions (`data_collection.sample_rate`): the audit trail.
pub type AuditHook = Arc<dyn Fn(&Features, &Decision, u64) + Send + Sync>;

pub(crate) struct Settings {
    pub(crate) strategy: Strategy,
    policies: PolicySet,
    pub(crate) bayes: BayesConfig,
    tuning: BayesTuning,
    adaptive: bool,
    overrides: OverrideSet,
    contexts: Arc<ContextSet>,
}

impl Settings {
    fn new(config: &Config) -> Result<Settings> {
        let strategy = config.strategy.clone();
        let policies = PolicySet::new(strategy.policies.clone())?;
        Ok(Settings {
            bayes: strategy.bayes(),
            tuning: strategy.bayesian,
            adaptive: config.enabled && strategy.enabled && strategy.data_collection.enabled,
            overrides: OverrideSet::default(),
            contexts: Arc::new(ContextSet::new(&config.contexts, &strategy.circuit_breaker)?),
            policies,
            strategy,
        })
    }

    /// The breaker settings of `job_type`'s downstream (its context's, else the strategy's).
    fn breaker_for(&self, job_type: &str) -> &crate::breaker::BreakerConfig {
        self.contexts.get(job_type).map_or(&self.strategy.circuit_breaker, |c| &c.breaker)
    }
}

/// Counters for operators (Prometheus later); all monotonic.
#[derive(Default)]
struct Metrics {
    decisions: [AtomicU64; 5],
    retries: AtomicU64,
    refusals: AtomicU64,
    guardrails: [AtomicU64; GUARDRAILS.len()],
    records: AtomicU64,
    refits: AtomicU64,
    released: AtomicU64,
}

/// A copy of the engine's counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    pub decisions_total: u64,
    pub decisions_by_method: Vec<(Method, u64)>,
    pub retries_total: u64,
    pub refusals_total: u64,
    pub guardrail_triggers: Vec<(String, u64)>,
    pub records_total: u64,
    pub refits_total: u64,
    pub learned_keys: u64,
    pub key_evictions_total: u64,
    pub emergency_stop: bool,
    /// Model inferences that failed (each decision then came from the tier below).
    #[serde(default)]
    pub ml_errors_total: u64,
    /// Decisions the ML tier should have taken part in while it was unavailable.
    #[serde(default)]
    pub ml_unavailable_total: u64,
    /// Lifecycle events by kind (counted whether or not anybody subscribes).
    pub events_total: Vec<(String, u64)>,
    /// Events a full subscriber queue dropped.
    pub events_dropped_total: u64,
    pub overrides_active: u64,
    /// Where state lives (`memory`, `sqlite:///…`, `redis://…`, without secrets).
    pub store: String,
    /// Records waiting to be written (bounded by `store_buffer`).
    pub store_buffered: u64,
    pub store_written_total: u64,
    /// Records dropped because the buffer was full while the store was unreachable.
    pub store_dropped_total: u64,
    /// Sampled decisions not written to the audit trail: past `max_audit_per_sec`.
    pub audit_shed_total: u64,
    pub store_errors_total: u64,
    /// The last write or fleet sync failed: decisions run on this engine's state alone.
    pub store_degraded: bool,
    /// Outcomes other workers of a fleet recorded, learned here.
    pub fleet_outcomes_total: u64,
    /// Check-ins answered "the downstream is back: retry now" (probe-and-release).
    #[serde(default)]
    pub released_total: u64,
}

/// Builds an [`Engine`] from a config, a seed and hooks.
#[derive(Default)]
pub struct EngineBuilder {
    config: Config,
    seed: Option<u64>,
    audit: Option<AuditHook>,
    store: Option<Arc<dyn Store>>,
}

impl EngineBuilder {
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Makes every random choice reproducible.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    pub fn guardrails(mut self, guardrails: Guardrails) -> Self {
        self.config.strategy.guardrails = guardrails;
        self
    }

    pub fn policies(mut self, policies: Vec<Policy>) -> Self {
        self.config.strategy.policies = policies;
        self
    }

    /// The ONNX Runtime library for the ML tier (see [`crate::ml`] for the default search).
    pub fn ml_runtime(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.config.ml_runtime_path = Some(path.into());
        self
    }

    /// Which inference backend serves models (default [`MlBackend::Auto`](crate::ml::MlBackend)).
    pub fn ml_backend(mut self, backend: crate::ml::MlBackend) -> Self {
        self.config.ml_backend = backend;
        self
    }

    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.config.max_keys = max_keys;
        self
    }

    /// Where state lives: `memory` (default), `sqlite:///path.db`, `redis://host:port/db`.
    pub fn store(mut self, url: impl Into<String>) -> Self {
        self.config.store = url.into();
        self
    }

    /// A store opened by the caller (shared by several engines, or a custom one).
    pub fn store_handle(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    pub fn on_decision(mut self, hook: impl Fn(&Features, &Decision, u64) + Send + Sync + 'static) -> Self {
        self.audit = Some(Arc::new(hook));
        self
    }

    pub fn build(self) -> Result<Engine> {
        self.config.validate()?;
        let settings = Settings::new(&self.config)?;
        let seed = self.seed.or(self.config.seed).unwrap_or_else(|| {
            let state = std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), time::now_ms());
            mix64(state)
        });
        let guardrails = &settings.strategy.guardrails;
        let shared = Shared {
            emergency: Arc::new(AtomicBool::new(guardrails.emergency_stop)),
            guard: Arc::new(Mutex::new(GuardState::new(self.config.max_keys, guardrails))),
            learner: Arc::new(Learner::new(self.config.max_keys)),
            history: Arc::new(MemoryHistory::new(self.config.history_capacity)),
            settings: Arc::new(RwLock::new(Arc::new(settings))),
        };
        let store = match self.store {
            Some(store) => store,
            None => crate::store::open(&self.config.store_url(), Some(&self.config.redis_password))?,
        };
        let persist = if store.durable() {
            let mut restored = store.restore(self.config.history_capacity)?;
            let cursor = std::mem::take(&mut restored.cursor);
            shared.restore(restored);
            Some(Persister::start(Arc::clone(&store), shared.clone(), self.config.store_buffer, cursor)?)
        } else {
            None
        };
        let engine = Engine {
            emergency: shared.emergency,
            guard: shared.guard,
            learner: shared.learner,
            history: shared.history,
            settings: shared.settings,
            seed,
            counter: AtomicU64::new(0),
            metrics: Metrics::default(),
            audit: self.audit,
            ml: MlTier::new(self.config.ml_runtime_path.clone(), self.config.ml_backend),
            events: Arc::new(EventBus::default()),
            context_state: Mutex::new(ContextState::default()),
            store,
            persist,
        };
        if engine.persist.is_some() {
            match engine.load_ml_registry() {
                // An unreachable fleet store starts the engine without the registry
                // (decisions come from the tiers below; deploy again or restart).
                Err(Error::Store(_)) if engine.store.fleet().is_some() => {}
                other => other?,
            }
        }
        Ok(engine)
    }
}

/// The retry engine. Cheap to share (`Arc<Engine>`); every method takes `&self`.
pub struct Engine {
    settings: Arc<RwLock<Arc<Settings>>>,
    emergency: Arc<AtomicBool>,
    learner: Arc<Learner>,
    guard: Arc<Mutex<GuardState>>,
    history: Arc<MemoryHistory>,
    seed: u64,
    counter: AtomicU64,
    metrics: Metrics,
    audit: Option<AuditHook>,
    ml: MlTier,
    events: Arc<EventBus>,
    /// Counts of the contexts' own caps (locked only for contexts that have caps).
    context_state: Mutex<ContextState>,
    store: Arc<dyn Store>,
    /// The writer thread of a durable store (none for memory).
    persist: Option<Persister>,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new()
    }
}

/// What the Bayesian tier knows for a failure: the plan of the view chosen, and when
/// the key's rate limit resets (learned from every job of the key).
struct Learned<'f> {
    scope: Scope<'f>,
    plan: Option<Plan>,
    reset: Reset,
}

/// A decision in the making.
struct Draft {
    retry: bool,
    delay_ms: u64,
    method: Method,
    confidence: f64,
    estimated: f64,
    guards: Vec<Cow<'static, str>>,
    rationale: String,
    /// The learning tiers may answer (the engine's and the context's switch).
    adaptive: bool,
    /// Set when the rules tier's backoff gave the delay: its bounds, within which
    /// health-aware backoff may move it.
    rules_bounds: Option<(u64, u64)>,
    /// Set while the downstream is down: how often the waiting job checks in.
    check_in_ms: Option<u64>,
}

impl Draft {
    fn refuse(&mut self, method: Method, guard: Option<&'static str>, why: impl AsRef<str>) {
        self.retry = false;
        self.delay_ms = 0;
        self.method = method;
        self.confidence = 1.0;
        self.estimated = 0.0;
        if let Some(g) = guard {
            self.guards.push(Cow::Borrowed(g));
        }
        self.rationale.clear();
        self.rationale.push_str(why.as_ref());
    }

    fn clip(&mut self, guard: &'static str, delay_ms: u64, note: std::fmt::Arguments<'_>) {
        self.delay_ms = delay_ms;
        self.name(guard);
        let _ = write!(self.rationale, "; {note}");
    }

    /// Name a guardrail once.
    fn name(&mut self, guard: &'static str) {
        if !self.guards.iter().any(|g| g == guard) {
            self.guards.push(Cow::Borrowed(guard));
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A real failure: counted, and a granted retry spends budget.
    Live,
    /// A what-if (preview): reads state, changes nothing.
    Preview,
}

impl Engine {
    /// An engine with the API document's defaults and a random seed.
    pub fn new() -> Engine {
        Engine::builder().build().unwrap_or_else(|_| unreachable_default())
    }

    pub fn builder() -> EngineBuilder {
        EngineBuilder::default()
    }

    pub fn from_config(config: Config) -> Result<Engine> {
        Engine::builder().config(config).build()
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    fn settings(&self) -> Arc<Settings> {
        Arc::clone(&self.settings.read().unwrap_or_else(|p| p.into_inner()))
    }

    fn guard(&self) -> MutexGuard<'_, GuardState> {
        self.guard.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Should this failure be retried, and after how long?
    pub fn decide(&self, features: &Features, now_ms: Option<u64>) -> Result<Decision> {
        features.validate()?;
        let now = now_ms.unwrap_or_else(time::now_ms);
        let settings = self.settings();
        let bits = mix64(self.seed ^ mix64(self.counter.fetch_add(1, Ordering::Relaxed)));
        let mut decision = self.evaluate(features, now, &settings, bits, Mode::Live);
        if let Some(p) = &self.persist {
            if p.queue.stats.degraded.load(Ordering::Relaxed) {
                decision
                    .rationale
                    .push_str(" (the store is unreachable: decided from this engine's own state)");
            }
        }
        self.count(&decision);
        self.emit_decision(features, &decision, now);
        if (self.audit.is_some() || self.persist.is_some())
            && rand01(mix64(bits ^ 0xa5a5)) < settings.strategy.data_collection.sample_rate
        {
            if let Some(hook) = &self.audit {
                hook(features, &decision, now);
            }
            let cap = settings.strategy.data_collection.max_audit_per_sec;
            if let Some(p) = self.persist.as_ref().filter(|p| p.queue.admit_audit(cap)) {
                p.queue.push_audit(AuditRecord {
                    at_ms: now,
                    features: features.clone(),
                    decision: decision.clone(),
                });
            }
        }
        Ok(decision)
    }

    fn evaluate(&self, f: &Features, now: u64, s: &Settings, bits: u64, mode: Mode) -> Decision {
        let g = &s.strategy.guardrails;
        let kind = classify(f.http_status, f.error_class.as_deref(), f.error_code.as_deref());
        let label = f.error_class.as_deref().unwrap_or(kind.as_str());
        let subject = Subject {
            job_type: &f.job_type,
            error_class: f.error_class.as_deref(),
            error_code: f.error_code.as_deref(),
            http_status: f.http_status,
            kind,
        };
        let context = s.contexts.get(&f.job_type);
        let ov = if s.overrides.is_empty() { Overrides::default() } else { s.overrides.resolve(f, now) };
        let matched = s.policies.matching(&subject);
        let policy: Cow<'_, Policy> = match (ov.policy.and_then(|(name, _)| s.policies.get(name)), context) {
            (Some(named), _) => Cow::Borrowed(named),
            (None, Some(c)) => c.context.shape(matched),
            (None, None) => Cow::Borrowed(matched),
        };
        let policy = policy.as_ref();
        let policy_max = ov.max_attempts.map_or(policy.max_attempts, |(n, _)| n);
        let max_attempts = policy_max.min(g.max_attempts).min(f.max_attempts.unwrap_or(u32::MAX));
        let mut d = Draft {
            retry: true,
            delay_ms: 0,
            method: Method::Rules,
            confidence: RULES_CONFIDENCE,
            estimated: 0.5,
            guards: Vec::new(),
            rationale: String::with_capacity(256),
            adaptive: s.adaptive && context.is_none_or(|c| c.learning()),
            rules_bounds: None,
            check_in_ms: None,
        };

        if s.adaptive && mode == Mode::Live {
            self.remember_reset(f, kind, label, now);
        }
        let mut advice = Advice::default();
        if let Some((method, guard, why)) =
            self.hard_refusal(f, kind, label, policy, policy_max, max_attempts, g)
        {
            d.refuse(method, guard, why);
        } else if let Some((true, o)) = ov.retries_disabled {
            d.refuse(
                Method::Guardrail,
                Some("override"),
                format!("Not retrying: retries are disabled for {}", o.scope()),
            );
        } else {
            advice = self.choose_delay(f, kind, label, policy, max_attempts, now, s, bits, mode, &mut d);
            if d.method != Method::Ml {
                self.ml_note(&advice, mode, &mut d);
            }
            fixed_delay(&ov, f, max_attempts, &mut d);
        }
        if let Some(c) = context.filter(|_| d.retry) {
            say!(&mut d.rationale, "; settings of the ", c.name.as_str(), " context");
        }

        let mut guard_state = self.guard();
        let breaker = context.map_or(&s.strategy.circuit_breaker, |c| &c.breaker);
        // Whether the downstream looks unhealthy, known from counting this failure (live).
        let mut unhealthy = None;
        if mode == Mode::Live {
            let rate_limited = kind == ErrorKind::RateLimit;
            unhealthy = Some(guard_state.on_failure(f, rate_limited, now, g, breaker));
        }
        if d.retry && d.rules_bounds.is_some() {
            adjust_for_health(f, s, context, &mut guard_state, now, unhealthy, &mut d);
        }
        if d.retry {
            clamp_to_overrides(&ov, &mut d);
            let controls = Controls { context, overrides: &ov };
            self.apply_guardrails(f, now, s, mix64(bits), mode, &mut guard_state, &mut d, &controls);
        }
        let transitions = guard_state.take_transitions();
        drop(guard_state);
        self.emit_transitions(transitions);
        if !ov.is_empty() && !d.guards.iter().any(|g| g == "emergency_stop") {
            d.name("override");
            ov.describe(&mut d.rationale);
        }

        let decision = Decision {
            should_retry: d.retry,
            delay_ms: d.delay_ms,
            max_attempts,
            confidence: round3(d.confidence),
            rationale: d.rationale,
            method: d.method,
            estimated_success: round3(d.estimated),
            next_evaluation: time::format_rfc3339(now.saturating_add(d.delay_ms)),
            check_in_ms: d.check_in_ms.filter(|_| d.retry),
            policy_guardrails: d.guards,
            error_class: label.to_string(),
            policy: policy.name.clone(),
        };
        if mode == Mode::Live && s.strategy.ml_enabled {
            self.ml.observe(f, &decision, &advice);
        }
        decision
    }

    /// Say why the ML tier did not decide, when it should have; count failures.
    fn ml_note(&self, advice: &Advice, mode: Mode, d: &mut Draft) {
        let live = mode == Mode::Live;
        if let Some(why) = &advice.unavailable {
            if live {
                self.ml.unavailable.fetch_add(1, Ordering::Relaxed);
            }
            say!(&mut d.rationale, "; ", why.as_ref(), ", so the tier below decided");
            return;
        }
        if let Some(Err(_)) = &advice.shadow {
            if live {
                self.ml.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        match &advice.serve {
            Some(Err(why)) => {
                if live {
                    self.ml.errors.fetch_add(1, Ordering::Relaxed);
                }
                say!(&mut d.rationale, "; ML tier: ", why.as_str(), ", so the tier below decided");
            }
            Some(Ok(p)) => {
                let m = &p.model.sidecar;
                say!(
                    &mut d.rationale,
                    "; model ",
                    m.name,
                    " ",
                    m.version,
                    " would retry in ",
                    Ms(p.choice.delay_ms),
                    " (",
                    Pct(p.choice.p_success),
                    " likely, confidence ",
                    Two(p.confidence),
                    "): earlier than the rules needs confidence and retries to spare"
                );
            }
            None => {}
        }
    }

    /// Cases that are never retried, whatever any tier thinks.
    #[allow(clippy::too_many_arguments)]
    fn hard_refusal(
        &self,
        f: &Features,
        kind: ErrorKind,
        label: &str,
        policy: &Policy,
        policy_max: u32,
        max_attempts: u32,
        g: &Guardrails,
    ) -> Option<(Method, Option<&'static str>, String)> {
        if self.emergency.load(Ordering::Relaxed) {
            return Some((
                Method::Guardrail,
                Some("emergency_stop"),
                "Emergency stop is on: all retries are halted.".into(),
            ));
        }
        if !kind.retryable() {
            let why = format!(
                "Not retrying: {label} failures ({}) are permanent and need a fix, not a retry.",
                kind.as_str()
            );
            let guard = policy.retries().then_some("never_retry");
            let method = if guard.is_some() { Method::Guardrail } else { Method::Rules };
            return Some((method, guard, why));
        }
        if !policy.retries() && policy_max <= 1 {
            return Some((
                Method::Rules,
                None,
                format!("The {} policy does not retry {label} failures.", policy.name),
            ));
        }
        if f.attempt_number >= max_attempts {
            // The guardrail names itself only when it, not the policy or the caller, binds.
            let (method, guard) = if g.max_attempts < policy_max.min(f.max_attempts.unwrap_or(u32::MAX)) {
                (Method::Guardrail, Some("max_attempts"))
            } else {
                (Method::Rules, None)
            };
            return Some((
                method,
                guard,
                format!("Attempt {} of {max_attempts} failed: no attempts left.", f.attempt_number),
            ));
        }
        if !f.is_idempotent() && kind.may_have_taken_effect() {
            return Some((
                Method::Guardrail,
                Some("non_idempotent"),
                format!(
                    "Not retrying a non-idempotent call after a {} failure that may have taken effect.",
                    kind.as_str()
                ),
            ));
        }
        None
    }

    /// The tiers: the matched policy's backoff, or the learned plan when it is safe to
    /// follow: later than the rules at any confidence (waiting is the safe direction and
    /// how the model explores), earlier only when confident.
    #[allow(clippy::too_many_arguments)]
    fn choose_delay(
        &self,
        f: &Features,
        kind: ErrorKind,
        label: &str,
        policy: &Policy,
        max_attempts: u32,
        now: u64,
        s: &Settings,
        bits: u64,
        mode: Mode,
        d: &mut Draft,
    ) -> Advice {
        let elapsed = f.since_first_failure_ms.unwrap_or(0);
        let backoff = policy.backoff(kind);
        let prev = f.since_last_failure_ms().unwrap_or(policy.base_delay_ms);
        let rules_delay = backoff.delay(f.attempt_number, prev, rand01(bits));
        let retries_left = max_attempts.saturating_sub(f.attempt_number).max(1);
        let learned =
            if d.adaptive { self.learned_plan(f, label, elapsed, retries_left, now, s) } else { None };
        let retry = f.attempt_number + 1;
        let respect = s.strategy.guardrails.respect_retry_after;
        let own = f.retry_after_ms(now).filter(|_| respect);
        // A reset predicted from the learned period is a real one but maybe not the next
        // (the period may be a multiple of the true one): taken only when no later than
        // the rules would wait.
        let shared = learned.as_ref().map(|l| l.reset).filter(|r| {
            respect && !(r.periodic_at(now) && r.wait_from(now).is_some_and(|w| w > rules_delay))
        });
        if let Some((wait, whose)) =
            own.map(|ra| (ra, None)).or(shared.and_then(|r| Some((r.wait_from(now)?, Some(r)))))
        {
            // The server said when: that beats any guess. Up to 5 % later, so the callers
            // it told do not all return in the same millisecond.
            d.delay_ms = wait.saturating_add((wait as f64 * 0.05 * rand01(mix64(bits ^ 0x5eed))) as u64);
            d.confidence = 0.9;
            d.estimated = learned.as_ref().and_then(|l| l.plan).map_or(0.9, |p| p.recovered_by.max(0.5));
            say!(&mut d.rationale, "Retry ", retry, " of ", max_attempts, " in ", Ms(d.delay_ms), ": ");
            match whose {
                None => d.rationale.push_str("the server asked for it (Retry-After)"),
                Some(reset) if reset.periodic_at(now) => say!(
                    &mut d.rationale,
                    "the rate limit resets every ",
                    Ms(reset.period_ms.unwrap_or_default()),
                    ", learned from other jobs' Retry-After and retries, and the next reset is then"
                ),
                Some(reset) => say!(
                    &mut d.rationale,
                    "the rate limit resets then, learned from other jobs' Retry-After and retries (known to within ",
                    Ms(reset.uncertainty_ms()),
                    ")"
                ),
            }
            return Advice::default();
        }
        let advice = if d.adaptive && s.strategy.ml_enabled {
            self.ml.advise(f, now, retries_left, &s.bayes, bits, mode == Mode::Live)
        } else {
            Advice::default()
        };
        if let Some(Ok(p)) = &advice.serve {
            // The Bayesian tier's rule: later than the rules at any confidence, earlier only
            // when confident and not on the final attempt.
            let may_be_earlier = p.confidence >= s.bayes.threshold && retries_left > 1;
            if p.choice.p_success >= MIN_PLAN_SUCCESS && (p.choice.delay_ms >= rules_delay || may_be_earlier)
            {
                let spread = (p.choice.delay_ms as f64 * 0.1 * rand01(mix64(bits ^ 0x5eed))) as u64;
                d.method = Method::Ml;
                d.delay_ms = p.choice.delay_ms + spread;
                d.confidence = p.confidence;
                d.estimated = p.choice.p_success;
                say!(&mut d.rationale, "Retry ", retry, " of ", max_attempts, " in ", Ms(d.delay_ms), ": ");
                p.describe(&mut d.rationale);
                return advice;
            }
        }
        self.learned_or_rules(f, label, policy, backoff, rules_delay, max_attempts, learned, s, bits, d);
        advice
    }

    /// The Bayesian tier's plan when it may be followed, else the rules' backoff.
    #[allow(clippy::too_many_arguments)]
    fn learned_or_rules(
        &self,
        f: &Features,
        label: &str,
        policy: &Policy,
        backoff: crate::backoff::Backoff,
        rules_delay: u64,
        max_attempts: u32,
        learned: Option<Learned<'_>>,
        s: &Settings,
        bits: u64,
        d: &mut Draft,
    ) {
        let elapsed = f.since_first_failure_ms.unwrap_or(0);
        let retry = f.attempt_number + 1;
        let retries_left = max_attempts.saturating_sub(f.attempt_number).max(1);
        if let Some(Learned { scope, plan: Some(plan), .. }) = &learned {
            let useful = plan.p_success >= MIN_PLAN_SUCCESS;
            // Earlier than the rules needs confidence, and never for the final attempt: a
            // curve gone stale (recovery just slowed down) must not spend the last one early.
            let may_be_earlier = plan.confidence >= s.bayes.threshold && retries_left > 1;
            if useful && (plan.delay_ms >= rules_delay || may_be_earlier) {
                // Later only, up to 10 %: jobs that failed together do not return together.
                let spread = (plan.delay_ms as f64 * 0.1 * rand01(mix64(bits ^ 0x5eed))) as u64;
                let explore = rand01(mix64(bits ^ 0xe7)) < s.tuning.explore_rate;
                d.method = Method::Bayesian;
                d.delay_ms = if explore {
                    (plan.delay_ms as f64 * (0.4 + 0.6 * rand01(mix64(bits ^ 0x7e)))) as u64
                } else {
                    plan.delay_ms + spread
                };
                d.confidence = plan.confidence;
                d.estimated = plan.p_success;
                let clock =
                    if f.since_first_failure_ms.is_some() { "of the first failure" } else { "of delay" };
                say!(
                    &mut d.rationale,
                    "Learned recovery curve",
                    scope.describe(),
                    ": ",
                    Pct(plan.recovered_by),
                    " of failed jobs recover within ",
                    Ms(elapsed + plan.delay_ms),
                    " ",
                    clock,
                    ", so retry ",
                    retry,
                    " of ",
                    max_attempts,
                    " in ",
                    Ms(d.delay_ms),
                    " (",
                    Pct(plan.p_success),
                    " likely to succeed now; ",
                    plan.samples,
                    " samples, confidence ",
                    Two(plan.confidence),
                );
                if let Some(then) = plan.then_at_ms {
                    say!(&mut d.rationale, "; next at ", Ms(then), " if this fails");
                }
                d.rationale.push(')');
                if explore {
                    say!(
                        &mut d.rationale,
                        ", brought forward from ",
                        Ms(plan.delay_ms),
                        " to learn how soon jobs recover (",
                        Pct(s.tuning.explore_rate),
                        " of learned retries explore)"
                    );
                }
                if plan.confidence < s.bayes.threshold {
                    say!(
                        &mut d.rationale,
                        ", followed below confidence ",
                        Two(s.bayes.threshold),
                        " because it waits longer than the rules' ",
                        Ms(rules_delay),
                        " (later is the safe direction)"
                    );
                }
                return;
            }
        }
        d.delay_ms = rules_delay;
        d.rules_bounds = Some((backoff.min_ms, backoff.max_ms));
        say!(
            &mut d.rationale,
            "The ",
            policy.name,
            " policy matched ",
            label,
            ": ",
            strategy_name(backoff.strategy),
            " backoff gives ",
            Ms(d.delay_ms),
            " before retry ",
            retry,
            " of ",
            max_attempts
        );
        if !d.adaptive {
            d.rationale.push_str(" (adaptive tiers disabled)");
            return;
        }
        match learned {
            None => d.rationale.push_str(" (nothing learned yet for this key)"),
            Some(Learned { plan: None, .. }) => {
                let samples = self.learner.with(&f.job_type, label, Scope::Key, |m| m.samples()).unwrap_or(0);
                say!(
                    &mut d.rationale,
                    " (Bayesian tier has ",
                    samples,
                    " of ",
                    s.bayes.min_samples,
                    " samples)"
                );
            }
            Some(Learned { plan: Some(plan), .. }) if plan.p_success < MIN_PLAN_SUCCESS => {
                d.estimated = plan.p_success;
                say!(
                    &mut d.rationale,
                    " (the learned curve sees little chance of recovery after ",
                    Ms(f.since_first_failure_ms.unwrap_or(0)),
                    ": ",
                    Pct(plan.p_success),
                    ")"
                );
            }
            Some(Learned { plan: Some(plan), .. }) if retries_left <= 1 => {
                d.estimated = plan.p_success;
                say!(
                    &mut d.rationale,
                    " (the learned plan would retry in ",
                    Ms(plan.delay_ms),
                    "; the final attempt keeps the rules' patience)"
                );
            }
            Some(Learned { plan: Some(plan), .. }) => {
                d.estimated = plan.p_success;
                say!(
                    &mut d.rationale,
                    " (the learned plan, retry in ",
                    Ms(plan.delay_ms),
                    ", is earlier and needs confidence ",
                    Two(s.bayes.threshold),
                    "; it has ",
                    Two(plan.confidence),
                    ")"
                );
            }
        }
    }

    /// The plan of the most specific view with enough evidence (the tenant's, then the
    /// degraded period's, then the whole key's), and when the key's rate limit resets.
    /// `None` when nothing is learned for the key.
    fn learned_plan<'f>(
        &self,
        f: &'f Features,
        label: &str,
        elapsed: u64,
        retries_left: u32,
        now: u64,
        s: &Settings,
    ) -> Option<Learned<'f>> {
        let t = &s.tuning;
        let (plan, reset) = self
            .learner
            .with(&f.job_type, label, Scope::Key, |m| (m.plan(elapsed, retries_left), m.reset))?;
        let first_failure = now.saturating_sub(elapsed);
        let narrow = [
            f.tenant.as_deref().filter(|_| t.tenant_scopes).map(Scope::Tenant),
            (t.state_scopes && self.guard().degraded_at(&f.job_type, first_failure))
                .then_some(Scope::Degraded),
            t.hour_scopes
                .then(|| Scope::Hour(f.time_of_day.unwrap_or_else(|| time::hour_of_day(first_failure)))),
        ];
        for scope in narrow.into_iter().flatten() {
            let narrow_plan = self.learner.with(&f.job_type, label, scope, |m| {
                m.fit()
                    .filter(|fit| fit.weight >= t.scope_min_samples as f32)
                    .and_then(|_| m.plan(elapsed, retries_left))
            });
            if let Some(Some(plan)) = narrow_plan {
                return Some(Learned { scope, plan: Some(plan), reset });
            }
        }
        Some(Learned { scope: Scope::Key, plan, reset })
    }

    /// Learn when the key's rate limit resets from this failure: its `Retry-After`, and a
    /// retry refused (the reset had not come). A rate limit resets for every caller at
    /// once, so jobs told nothing can wait for the same reset.
    fn remember_reset(&self, f: &Features, kind: ErrorKind, label: &str, now: u64) {
        let ra = f.retry_after_ms(now);
        let refused_retry = kind == ErrorKind::RateLimit && f.attempt_number > 1;
        if ra.is_none() && !refused_retry {
            return;
        }
        self.learner.update(&f.job_type, label, Scope::Key, |m| {
            if refused_retry {
                m.reset.on_refused_after_reset(now, ra);
                m.reset.on_retry_outcome(now, false);
            }
            if let Some(ra) = ra {
                m.reset.on_retry_after(now, ra);
            }
        });
    }

    /// Floors, caps, deadline, breaker and the shared budgets, in that order.
    #[allow(clippy::too_many_arguments)]
    fn apply_guardrails(
        &self,
        f: &Features,
        now: u64,
        s: &Settings,
        bits: u64,
        mode: Mode,
        state: &mut GuardState,
        d: &mut Draft,
        controls: &Controls<'_>,
    ) {
        let g = &s.strategy.guardrails;
        let commit = mode == Mode::Live;
        let breaker = controls.context.map_or(&s.strategy.circuit_breaker, |c| &c.breaker);
        if let Admit::Wait(wait) = state.breaker_admit(&f.job_type, now, breaker, commit) {
            if wait > g.max_delay_ms {
                return d.refuse(
                    Method::Breaker,
                    Some("circuit_breaker"),
                    format!(
                        "Circuit breaker for {} is open for {}, beyond the {} max delay.",
                        f.job_type,
                        Ms(wait),
                        Ms(g.max_delay_ms)
                    ),
                );
            }
            if wait > d.delay_ms {
                d.method = Method::Breaker;
                d.clip(
                    "circuit_breaker",
                    wait,
                    format_args!("circuit breaker for {} is open, so wait {}", f.job_type, Ms(wait)),
                );
            }
        }
        if g.respect_retry_after {
            if let Some(ra) = f.retry_after_ms(now) {
                if ra > g.max_delay_ms {
                    return d.refuse(
                        Method::Guardrail,
                        Some("retry_after"),
                        format!(
                            "The server asked to wait {} (Retry-After), beyond the {} max delay.",
                            Ms(ra),
                            Ms(g.max_delay_ms)
                        ),
                    );
                }
                if ra > d.delay_ms {
                    d.clip(
                        "retry_after",
                        ra,
                        format_args!("raised to the server's Retry-After of {}", Ms(ra)),
                    );
                }
            }
        }
        if d.delay_ms < g.min_delay_ms {
            d.clip(
                "min_delay",
                g.min_delay_ms,
                format_args!("raised to the {} min delay", Ms(g.min_delay_ms)),
            );
        }
        if d.delay_ms > g.max_delay_ms {
            d.clip(
                "max_delay",
                g.max_delay_ms,
                format_args!("capped at the {} max delay", Ms(g.max_delay_ms)),
            );
        }
        let deadline = [f.deadline_ms, g.max_total_ms, controls.overrides.deadline_ms.map(|(d, _)| d)]
            .into_iter()
            .flatten()
            .min();
        let elapsed = f.since_first_failure_ms.unwrap_or(0);
        let past_deadline = |delay: u64| deadline.filter(|&limit| elapsed.saturating_add(delay) > limit);
        let refuse_deadline = |d: &mut Draft, limit: u64| {
            d.refuse(
                Method::Guardrail,
                Some("deadline"),
                format!(
                    "A retry in {} would start after the {} deadline ({} already spent).",
                    Ms(d.delay_ms),
                    Ms(limit),
                    Ms(elapsed)
                ),
            )
        };
        if let Some(limit) = past_deadline(d.delay_ms) {
            return refuse_deadline(d, limit);
        }
        let priority = f.priority.or(controls.context.and_then(|c| c.context.priority));
        let bypass_global = priority == Some(Priority::Critical)
            && controls.context.is_some_and(|c| c.context.respect_global_backpressure == Some(false));
        let ctx = RetryContext {
            job_type: &f.job_type,
            tenant: f.tenant.as_deref(),
            job_id: f.job_id.as_deref(),
            retry_at_ms: now.saturating_add(d.delay_ms),
            share: g.priority_shares.of(priority),
            bypass_global,
        };
        if let Err((guard, why)) = self.admit_context(controls, &ctx, priority, now, g, false) {
            return d.refuse(Method::Guardrail, Some(guard), why);
        }
        let admitted = state.admit_retry(&ctx, now, rand01(bits), g, commit);
        if admitted.is_ok() && commit {
            let _ = self.admit_context(controls, &ctx, priority, now, g, true);
        }
        if let Ok(crate::guard::Admitted { bypassed: Some(limit), .. }) = admitted {
            say!(
                &mut d.rationale,
                "; critical priority went past the global ",
                limit.replace('_', " "),
                " (the ",
                controls.context.map_or("", |c| c.name.as_str()),
                " context does not respect global backpressure)"
            );
        }
        match admitted.map(|a| a.throttled) {
            Ok(None) => {}
            Ok(Some(probability)) => {
                let defer = g.throttle_window_ms / 2;
                if defer > g.max_delay_ms {
                    return d.refuse(
                        Method::Guardrail,
                        Some("adaptive_throttle"),
                        format!(
                            "Not retrying: {} is overloaded (adaptive throttling rejects {} of retries) and deferring {} exceeds the max delay.",
                            f.job_type,
                            Pct(probability),
                            Ms(defer)
                        ),
                    );
                }
                if let Some(limit) = past_deadline(defer.max(d.delay_ms)) {
                    d.delay_ms = defer;
                    return refuse_deadline(d, limit);
                }
                if defer > d.delay_ms {
                    d.method = Method::Guardrail;
                    d.clip(
                        "adaptive_throttle",
                        defer,
                        format_args!(
                            "{} is overloaded (adaptive throttling rejects {} of retries), so this one is deferred to {}",
                            f.job_type,
                            Pct(probability),
                            Ms(defer)
                        ),
                    );
                }
            }
            Err(refusal) => {
                use crate::guard::Refusal::*;
                let why = match refusal {
                    Concurrency { in_flight, allowed, limit } => format!(
                        "Not retrying: {in_flight} retries are already in flight (limit {limit}{}).",
                        reserved(priority, allowed, u64::from(limit))
                    ),
                    Tenant { used, allowed } => format!(
                        "Not retrying: tenant {} used {used} of its {allowed} retries in the budget window.",
                        f.tenant.as_deref().unwrap_or("?")
                    ),
                    Budget { used, allowed, total } => format!(
                        "Not retrying: the retry budget is spent ({used} of {total} retries in the window{}).",
                        reserved(priority, allowed, total)
                    ),
                };
                d.refuse(Method::Guardrail, Some(refusal.guardrail()), why);
            }
        }
        if d.retry && commit && g.probe_and_release && state.down(&f.job_type, now) {
            let room = g.max_delay_ms.min(deadline.map_or(u64::MAX, |limit| limit.saturating_sub(elapsed)));
            hold_while_down(f, now, now.saturating_add(room), state, d);
        }
    }

    fn count(&self, d: &Decision) {
        let m = &self.metrics;
        let i = Method::ALL.iter().position(|x| *x == d.method).unwrap_or(0);
        m.decisions[i].fetch_add(1, Ordering::Relaxed);
        if d.should_retry {
            m.retries.fetch_add(1, Ordering::Relaxed);
        } else {
            m.refusals.fetch_add(1, Ordering::Relaxed);
        }
        for name in &d.policy_guardrails {
            if let Some(i) = GUARDRAILS.iter().position(|g| *g == name.as_ref()) {
                m.guardrails[i].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Learn from what happened on an attempt.
    pub fn record(&self, attempt: &Attempt, now_ms: Option<u64>) -> Result<()> {
        attempt.validate()?;
        let now = now_ms.unwrap_or_else(time::now_ms);
        let at = attempt.time_ms(now);
        let s = self.settings();
        let kind =
            classify(attempt.http_status, attempt.error_class.as_deref(), attempt.error_code.as_deref());
        let label = attempt.error_class.as_deref().unwrap_or(kind.as_str());
        // Only retries teach the delay model: a first attempt waited for nothing.
        let learns = s.adaptive && attempt.attempt_number > 1;
        let x = attempt.since_first_failure_ms.unwrap_or(attempt.delay_ms);
        let first_failure = at.saturating_sub(x);
        let t = &s.tuning;
        // A failure that began while the downstream was degraded is learned apart from the
        // key's everyday failures (read under the same lock that counts this outcome).
        let (degraded, transitions) = {
            let mut guard = self.guard();
            guard.on_outcome(attempt, now, &s.strategy.guardrails, s.breaker_for(&attempt.job_type));
            (
                learns && t.state_scopes && guard.degraded_at(&attempt.job_type, first_failure),
                guard.take_transitions(),
            )
        };
        self.metrics.records.fetch_add(1, Ordering::Relaxed);
        if s.strategy.ml_enabled {
            self.ml.outcome(&attempt.job_id, attempt.attempt_number, attempt.success);
        }
        self.after_outcome(attempt, at, transitions, &s);
        if !s.adaptive {
            return Ok(());
        }
        if learns && attempt.success && kind == ErrorKind::RateLimit {
            // A rate-limited job got through: the reset has come by now.
            self.learner
                .with_mut(&attempt.job_type, label, Scope::Key, |m| m.reset.on_retry_outcome(at, true));
        }
        if learns {
            let scopes = [
                Some(if degraded { Scope::Degraded } else { Scope::Key }),
                attempt.tenant.as_deref().filter(|_| t.tenant_scopes).map(Scope::Tenant),
                t.hour_scopes.then(|| {
                    Scope::Hour(attempt.time_of_day.unwrap_or_else(|| time::hour_of_day(first_failure)))
                }),
            ];
            for scope in scopes.into_iter().flatten() {
                let refit = self.learner.update(&attempt.job_type, label, scope, |m| {
                    m.observe(x.saturating_sub(attempt.delay_ms), x, attempt.success, &s.bayes)
                });
                if refit {
                    self.metrics.refits.fetch_add(1, Ordering::Relaxed);
                }
            }
            if let Some(p) = &self.persist {
                p.queue.push_outcome(OutcomeRecord {
                    scopes: scopes.iter().flatten().map(|sc| sc.to_string()).collect(),
                    ..outcome_record(attempt, label, at, x)
                });
            }
        } else if let Some(p) = &self.persist {
            p.queue.push_outcome(outcome_record(attempt, label, at, x));
        }
        self.history.append(HistoryRecord {
            key: self.learner.key(&attempt.job_type, label, Scope::Key),
            at_ms: at,
            delay_ms: attempt.delay_ms,
            success: attempt.success,
        });
        Ok(())
    }

    /// Has `job_type`'s downstream come back since `failed_at_ms`, when a waiting job's
    /// last attempt failed? Ask at each of a decision's `check_in_ms`: `true` once calls
    /// made after that failure are being accepted again and the breaker is not open, so
    /// the job should retry now instead of at the planned delay (probe-and-release).
    pub fn released(&self, job_type: &str, failed_at_ms: u64, now_ms: Option<u64>) -> Result<bool> {
        Features::new(job_type, 1).validate()?;
        let now = now_ms.unwrap_or_else(time::now_ms);
        if failed_at_ms > now {
            return Err(Error::invalid("failed_at_ms", "is later than now"));
        }
        let released = self.guard().released(job_type, failed_at_ms, now);
        if released {
            self.metrics.released.fetch_add(1, Ordering::Relaxed);
        }
        Ok(released)
    }

    /// First attempts that succeeded, counted in one call (a host's fast path: the
    /// budget and the breaker need to know about successes, not each one separately).
    pub fn record_successes(
        &self,
        job_type: &str,
        tenant: Option<&str>,
        count: u64,
        now_ms: Option<u64>,
    ) -> Result<()> {
        let probe = Features {
            job_type: job_type.to_string(),
            attempt_number: 1,
            tenant: tenant.map(str::to_string),
            ..Default::default()
        };
        probe.validate()?;
        let now = now_ms.unwrap_or_else(time::now_ms);
        let s = self.settings();
        let transitions = {
            let mut guard = self.guard();
            guard.on_first_successes(
                job_type,
                tenant,
                count,
                now,
                &s.strategy.guardrails,
                s.breaker_for(job_type),
            );
            guard.take_transitions()
        };
        self.emit_transitions(transitions);
        Ok(())
    }

    /// The schedule the engine would follow from this failure if every retry failed.
    /// Changes no state.
    pub fn preview(&self, features: &Features, max_attempts: u32, now_ms: Option<u64>) -> Result<Preview> {
        features.validate()?;
        if max_attempts == 0 || max_attempts > MAX_PREVIEW_ATTEMPTS {
            return Err(Error::invalid(
                "max_attempts",
                format!("must be 1–{MAX_PREVIEW_ATTEMPTS}, got {max_attempts}"),
            ));
        }
        let now = now_ms.unwrap_or_else(time::now_ms);
        let s = self.settings();
        let identity = features.job_id.as_deref().unwrap_or(&features.job_type);
        let base_bits = mix64(self.seed ^ std::hash::BuildHasher::hash_one(&FixedState, identity));
        let mut f = features.clone();
        let first_elapsed = f.since_first_failure_ms.unwrap_or(0);
        let (mut offset, mut recommendations, mut timeline) = (0u64, Vec::new(), Vec::new());
        while f.attempt_number < max_attempts {
            let d = self.evaluate(
                &f,
                now.saturating_add(offset),
                &s,
                mix64(base_bits ^ u64::from(f.attempt_number)),
                Mode::Preview,
            );
            if d.should_retry {
                offset = offset.saturating_add(d.delay_ms);
                timeline.push(TimelineEntry {
                    attempt_number: f.attempt_number + 1,
                    scheduled_time: time::format_rfc3339(now.saturating_add(offset)),
                    estimated_success: d.estimated_success,
                    delay_ms: d.delay_ms,
                    method: d.method,
                    rationale: d.rationale.clone(),
                    confidence: d.confidence,
                });
            }
            let stop = !d.should_retry;
            f.since_last_failure_ms = Some(d.delay_ms);
            f.since_last_failure = None;
            f.since_first_failure_ms = Some(first_elapsed.saturating_add(offset));
            f.retry_after_ms = None;
            f.retry_after = None;
            f.attempt_number += 1;
            recommendations.push(d);
            if stop {
                break;
            }
        }
        Ok(Preview {
            job_id: features.job_id.clone().unwrap_or_else(|| format!("{}_preview", features.job_type)),
            current_attempt: features.attempt_number,
            features: features.clone(),
            recommendations,
            timeline,
            generated_at: time::format_rfc3339(now),
        })
    }

    /// What was seen for (job_type, error_class) over the last `window_ms` (default 24 h).
    pub fn stats(
        &self,
        job_type: &str,
        error_class: &str,
        window_ms: Option<u64>,
        now_ms: Option<u64>,
    ) -> Result<Stats> {
        Features::new(job_type, 1).with_error_class(error_class).validate()?;
        if window_ms == Some(0) {
            return Err(Error::invalid("window", "must be longer than 0"));
        }
        let now = now_ms.unwrap_or_else(time::now_ms);
        let start = now.saturating_sub(window_ms.unwrap_or(DEFAULT_STATS_WINDOW_MS));
        let s = self.settings();
        let t = self.history.totals(self.learner.key(job_type, error_class, Scope::Key), start, now);
        // The key's everyday view and its degraded-period view, merged by raw counts.
        let mut counts = [(0u64, 0u64); BUCKETS];
        let mut samples = 0u64;
        for scope in [Scope::Key, Scope::Degraded] {
            self.learner.with(job_type, error_class, scope, |m| {
                samples += m.samples();
                for (b, c) in counts.iter_mut().enumerate() {
                    let (ok, failed) = m.bucket_counts(b);
                    *c = (c.0 + ok, c.1 + failed);
                }
            });
        }
        let buckets = if samples == 0 {
            Vec::new()
        } else {
            counts
                .iter()
                .enumerate()
                .map(|(b, &(successes, failures))| {
                    let (p, confidence) =
                        crate::bayes::bucket_summary(successes, failures, samples, &s.bayes);
                    BucketStats {
                        label: BUCKET_LABELS[b].to_string(),
                        min_ms: BUCKET_BOUNDS_MS[b],
                        max_ms: BUCKET_BOUNDS_MS.get(b + 1).copied(),
                        successes,
                        failures,
                        success_probability: round3(p),
                        confidence: round3(confidence),
                    }
                })
                .collect()
        };
        Ok(Stats {
            job_type: job_type.to_string(),
            error_class: error_class.to_string(),
            total_attempts: t.attempts,
            successful_retries: t.successes,
            failed_retries: t.attempts - t.successes,
            avg_delay_ms: if t.attempts == 0 { 0.0 } else { t.delay_sum_ms as f64 / t.attempts as f64 },
            success_rate: if t.attempts == 0 { 0.0 } else { round3(t.successes as f64 / t.attempts as f64) },
            last_updated: t.last_ms.map(time::format_rfc3339),
            window_start: time::format_rfc3339(start),
            window_end: time::format_rfc3339(now),
            buckets,
        })
    }

    /// Refit the Bayesian model of one key now (the API's `bayesian/update`).
    pub fn refit(&self, job_type: &str, error_class: &str) -> Result<()> {
        let s = self.settings();
        let refitted = [Scope::Key, Scope::Degraded]
            .into_iter()
            .filter_map(|scope| self.learner.with_mut(job_type, error_class, scope, |m| m.refit(&s.bayes)))
            .count();
        if refitted == 0 {
            return Err(Error::NotFound { what: format!("learned key ({job_type}, {error_class})") });
        }
        self.metrics.refits.fetch_add(refitted as u64, Ordering::Relaxed);
        Ok(())
    }

    pub fn policies(&self) -> Vec<Policy> {
        self.settings().policies.list()
    }

    pub fn add_policy(&self, policy: Policy) -> Result<()> {
        self.update_settings(|s| {
            s.policies.add(policy)?;
            s.strategy.policies = s.policies.list();
            Ok(())
        })
    }

    pub fn remove_policy(&self, name: &str) -> Result<Policy> {
        let mut removed = None;
        self.update_settings(|s| {
            removed = Some(s.policies.remove(name)?);
            s.strategy.policies = s.policies.list();
            Ok(())
        })?;
        removed.ok_or_else(|| Error::NotFound { what: format!("policy {name:?}") })
    }

    pub fn guardrails(&self) -> Guardrails {
        let mut g = self.settings().strategy.guardrails.clone();
        g.emergency_stop = self.emergency.load(Ordering::Relaxed);
        g
    }

    /// Replace the guardrails (validated first; the old ones stay on error).
    pub fn update_guardrails(&self, guardrails: Guardrails) -> Result<()> {
        guardrails.validate()?;
        if guardrails.emergency_stop != self.emergency.swap(guardrails.emergency_stop, Ordering::Relaxed) {
            if let Some(p) = &self.persist {
                p.queue.set_emergency(guardrails.emergency_stop);
            }
        }
        self.guard().reconfigure(&guardrails);
        self.update_settings(|s| {
            s.strategy.guardrails = guardrails;
            Ok(())
        })
    }

    /// Change some guardrail fields from a JSON object (the API's `PUT /guardrails`).
    pub fn patch_guardrails(&self, patch: &serde_json::Value) -> Result<Guardrails> {
        let next = self.guardrails().patched(patch)?;
        self.update_guardrails(next.clone())?;
        Ok(next)
    }

    /// The emergency stop: while on, nothing is retried. A durable store keeps it across
    /// restarts; a fleet store stops (or resumes) every worker.
    pub fn emergency_stop(&self, on: bool) {
        self.emergency.store(on, Ordering::Relaxed);
        if let Some(p) = &self.persist {
            p.queue.set_emergency(on);
        }
        let _ = self.update_settings(|s| {
            s.strategy.guardrails.emergency_stop = on;
            Ok(())
        });
    }

    pub fn is_emergency_stopped(&self) -> bool {
        self.emergency.load(Ordering::Relaxed)
    }

    /// The strategy in force (the API's `GET /strategy`).
    pub fn strategy(&self) -> Strategy {
        let mut st = self.settings().strategy.clone();
        st.guardrails.emergency_stop = self.is_emergency_stopped();
        st
    }

    /// Circuit breakers by downstream, as of `now_ms`.
    pub fn breakers(&self, now_ms: Option<u64>) -> Vec<BreakerSnapshot> {
        self.guard().breakers(now_ms.unwrap_or_else(time::now_ms))
    }

    /// The shared retry budget, as of `now_ms`.
    pub fn retry_budget(&self, now_ms: Option<u64>) -> BudgetSnapshot {
        let s = self.settings();
        self.guard().budget(now_ms.unwrap_or_else(time::now_ms), &s.strategy.guardrails)
    }

    pub fn metrics(&self) -> MetricsSnapshot {
        let m = &self.metrics;
        let store_stat = |read: fn(&crate::store::persist::StoreStats) -> u64| {
            self.persist.as_ref().map_or(0, |p| read(&p.queue.stats))
        };
        let by_method: Vec<_> =
            Method::ALL.iter().zip(&m.decisions).map(|(k, v)| (*k, v.load(Ordering::Relaxed))).collect();
        MetricsSnapshot {
            decisions_total: by_method.iter().map(|(_, v)| v).sum(),
            decisions_by_method: by_method,
            retries_total: m.retries.load(Ordering::Relaxed),
            refusals_total: m.refusals.load(Ordering::Relaxed),
            guardrail_triggers: GUARDRAILS
                .iter()
                .zip(&m.guardrails)
                .map(|(k, v)| (k.to_string(), v.load(Ordering::Relaxed)))
                .collect(),
            records_total: m.records.load(Ordering::Relaxed),
            refits_total: m.refits.load(Ordering::Relaxed),
            learned_keys: self.learner.len() as u64,
            key_evictions_total: self.learner.evictions(),
            emergency_stop: self.is_emergency_stopped(),
            ml_errors_total: self.ml.errors.load(Ordering::Relaxed),
            ml_unavailable_total: self.ml.unavailable.load(Ordering::Relaxed),
            events_total: self
                .events
                .counts()
                .into_iter()
                .map(|(k, n)| (k.as_str().to_string(), n))
                .collect(),
            events_dropped_total: self.events.dropped(),
            overrides_active: self.settings().overrides.len() as u64,
            store: self.store.url(),
            store_buffered: self.persist.as_ref().map_or(0, |p| p.queue.buffered()),
            store_written_total: store_stat(|s| s.written.load(Ordering::Relaxed)),
            store_dropped_total: store_stat(|s| s.dropped.load(Ordering::Relaxed)),
            audit_shed_total: store_stat(|s| s.audit_shed.load(Ordering::Relaxed)),
            store_errors_total: store_stat(|s| s.errors.load(Ordering::Relaxed)),
            store_degraded: self
                .persist
                .as_ref()
                .is_some_and(|p| p.queue.stats.degraded.load(Ordering::Relaxed)),
            fleet_outcomes_total: store_stat(|s| s.fleet_applied.load(Ordering::Relaxed)),
            released_total: m.released.load(Ordering::Relaxed),
        }
    }

    /// Add a model version to the registry: an ONNX file and its sidecar. The model is
    /// loaded once to prove it matches its feature contract and runs; a mismatch is
    /// refused with an error naming it, and nothing deployed changes.
    pub fn register_model(&self, onnx: Vec<u8>, sidecar: Sidecar, now_ms: Option<u64>) -> Result<ModelInfo> {
        self.ml_changed(self.ml.register(onnx, sidecar, now_ms.unwrap_or_else(time::now_ms)))
    }

    /// A durable store keeps the registry: write it after a change.
    fn ml_changed<T>(&self, result: Result<T>) -> Result<T> {
        let value = result?;
        if self.persist.is_some() {
            self.save_ml_registry()?;
        }
        Ok(value)
    }

    /// [`register_model`](Self::register_model) from files: `model.onnx` and its sidecar
    /// (`sidecar`, else `model.json` beside it).
    pub fn register_model_files(
        &self,
        model: impl AsRef<std::path::Path>,
        sidecar: Option<&std::path::Path>,
        now_ms: Option<u64>,
    ) -> Result<ModelInfo> {
        self.ml_changed(self.ml.register_files(model.as_ref(), sidecar, now_ms.unwrap_or_else(time::now_ms)))
    }

    /// Registered versions, with their training metrics and deployment state.
    pub fn models(&self) -> Vec<ModelInfo> {
        self.ml.versions()
    }

    /// Serve `version` to `canary_percent` % of jobs (0–100, sticky per `job_id`; 100 is
    /// a full rollout), and turn the ML tier on (`strategy.ml_enabled`). The previous
    /// deployment is kept for [`rollback_model`](Self::rollback_model).
    pub fn deploy_model(
        &self,
        version: &str,
        canary_percent: f64,
        now_ms: Option<u64>,
    ) -> Result<Deployment> {
        let d = self.ml.deploy(version, canary_percent, now_ms.unwrap_or_else(time::now_ms))?;
        self.enable_ml()?;
        self.ml_changed(Ok(d))
    }

    /// Run `version` in shadow: it decides alongside every decision, its choice is
    /// compared with the one served (agreement, and both predictions scored on the
    /// outcomes), and it is never served. `None` stops the shadow.
    pub fn shadow_model(&self, version: Option<&str>, now_ms: Option<u64>) -> Result<Deployment> {
        let d = self.ml.shadow(version, now_ms.unwrap_or_else(time::now_ms))?;
        self.enable_ml()?;
        self.ml_changed(Ok(d))
    }

    /// Return to the previous deployment (its models stay loaded: instant).
    pub fn rollback_model(&self, now_ms: Option<u64>) -> Result<Deployment> {
        self.ml_changed(self.ml.rollback(now_ms.unwrap_or_else(time::now_ms)))
    }

    /// No model serves or watches any more: decisions come from the Bayesian tier.
    pub fn rollback_to_bayesian(&self, now_ms: Option<u64>) -> Result<Deployment> {
        self.ml_changed(self.ml.rollback_to_bayesian(now_ms.unwrap_or_else(time::now_ms)))
    }

    /// The ML tier: runtime, deployment, versions, ML-vs-Bayesian comparison, failures.
    pub fn ml_status(&self) -> MlStatus {
        self.ml.status(self.settings().strategy.ml_enabled)
    }

    /// The registry as plain data, for a store to persist.
    pub fn ml_snapshot(&self) -> MlSnapshot {
        self.ml.snapshot()
    }

    /// Replace the registry from a snapshot (see [`MlTier::restore`](crate::ml)): versions
    /// are checked; a deployment that cannot be loaded here is kept and reported
    /// unavailable while decisions come from the Bayesian tier.
    pub fn restore_ml(&self, snapshot: MlSnapshot) -> Result<()> {
        let deployed = snapshot.deployment.serving.is_some() || snapshot.deployment.shadow.is_some();
        self.ml.restore(snapshot)?;
        if deployed {
            self.enable_ml()?;
        }
        Ok(())
    }

    fn enable_ml(&self) -> Result<()> {
        if self.settings().strategy.ml_enabled {
            return Ok(());
        }
        self.update_settings(|s| {
            s.strategy.ml_enabled = true;
            Ok(())
        })
    }

    /// Where this engine keeps its state.
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// Wait until every outcome and audit record so far is in the store (at most
    /// `timeout`); an error says the store is unreachable (the records stay buffered).
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        match &self.persist {
            Some(p) => p.flush(timeout),
            None => Ok(()),
        }
    }

    /// The most recent sampled decisions (`data_collection.sample_rate`), newest first;
    /// empty with the memory store.
    pub fn audit_trail(&self, limit: usize) -> Result<Vec<AuditRecord>> {
        self.store.audit(limit)
    }

    /// Recorded outcomes at or after `since_ms`, oldest first (a durable store's
    /// attempt history: the ML tier's training data).
    pub fn outcomes(&self, since_ms: u64, limit: usize) -> Result<Vec<OutcomeRecord>> {
        self.store.outcomes(since_ms, limit)
    }

    /// 64 bits unique to this engine and call (ids of dead letters).
    pub(crate) fn unique_bits(&self, now: u64) -> u64 {
        mix64(self.seed ^ mix64(now) ^ mix64(self.counter.fetch_add(1, Ordering::Relaxed) ^ 0xd1e))
    }

    fn update_settings(&self, change: impl FnOnce(&mut Settings) -> Result<()>) -> Result<()> {
        let mut slot = self.settings.write().unwrap_or_else(|p| p.into_inner());
        let mut next = Settings {
            strategy: slot.strategy.clone(),
            policies: slot.policies.clone(),
            bayes: slot.bayes,
            tuning: slot.tuning,
            adaptive: slot.adaptive,
            overrides: slot.overrides.clone(),
            contexts: Arc::clone(&slot.contexts),
        };
        change(&mut next)?;
        next.bayes = next.strategy.bayes();
        next.tuning = next.strategy.bayesian;
        *slot = Arc::new(next);
        Ok(())
    }
}

/// An attempt as the attempt history keeps it.
fn outcome_record(a: &Attempt, label: &str, at: u64, clock_ms: u64) -> OutcomeRecord {
    OutcomeRecord {
        at_ms: at,
        job_id: a.job_id.clone(),
        job_type: a.job_type.clone(),
        error_class: label.to_string(),
        tenant: a.tenant.clone(),
        attempt_number: a.attempt_number,
        delay_ms: a.delay_ms,
        clock_ms,
        success: a.success,
        scopes: Vec::new(),
    }
}

/// Unreachable: the default config always validates (a unit test proves it).
#[cold]
fn unreachable_default() -> Engine {
    panic!("the default configuration failed validation")
}

/// A fixed hasher so previews are reproducible across processes.
struct FixedState;

impl std::hash::BuildHasher for FixedState {
    type Hasher = Fnv;
    fn build_hasher(&self) -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3);
        }
    }
}

fn strategy_name(s: crate::backoff::Strategy) -> &'static str {
    use crate::backoff::Strategy::*;
    match s {
        Exponential => "exponential",
        Linear => "linear",
        Fibonacci => "fibonacci",
        Aggressive => "aggressive (3^n)",
        Constant => "constant",
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A duration for people (`150ms`, `8.2s`, `2m30s`, `1h5m`).
/// Probe-and-release, while `f`'s downstream is down: one job at a time probes it, the
/// others wait (no later than `latest`) and check in, and the first call that gets
/// through releases them all ([`Engine::released`]).
fn hold_while_down(f: &Features, now: u64, latest: u64, state: &mut GuardState, d: &mut Draft) {
    let planned = now.saturating_add(d.delay_ms);
    let at = state.claim_probe(&f.job_type, now, planned, latest);
    if at > planned {
        d.clip(
            "probe_and_release",
            at - now,
            format_args!(
                "{} is down for every caller and other jobs probe it sooner, so wait {} unless they find it back",
                f.job_type,
                Ms(at - now)
            ),
        );
    }
    let every = check_in_interval(d.delay_ms);
    if d.delay_ms >= 2 * every {
        d.check_in_ms = Some(every);
        say!(
            &mut d.rationale,
            "; check in every ",
            Ms(every),
            " and retry as soon as calls to ",
            f.job_type.as_str(),
            " get through again"
        );
    }
}

/// How often a job waiting `delay_ms` for a downstream that is down asks whether it is
/// back: a sixteenth of the wait, 1–10 s, so a release costs a few seconds at most and a
/// waiting job wakes at most 16 times.
fn check_in_interval(delay_ms: u64) -> u64 {
    (delay_ms / 16).clamp(1_000, 10_000)
}

pub fn fmt_ms(ms: u64) -> String {
    Ms(ms).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_builds() {
        assert!(Engine::builder().build().is_ok());
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(fmt_ms(150), "150ms");
        assert_eq!(fmt_ms(8_000), "8s");
        assert_eq!(fmt_ms(8_240), "8.2s");
        assert_eq!(fmt_ms(150_000), "2m30s");
        assert_eq!(fmt_ms(3_900_000), "1h5m");
    }
}
