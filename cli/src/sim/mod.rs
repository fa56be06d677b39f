//! The simulator: jobs against a simulated downstream in virtual time, one policy at a
//! time, measured the same way. smartretry's policies call the real engine (`core`);
//! nothing here decides a delay for it.

pub mod bound;
pub mod policies;
pub mod report;
pub mod scenario;
pub mod scenarios;
pub mod seeds;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use serde::Serialize;
use smartretry::mix64;

pub use policies::{baselines, FailureView, OutcomeView, Policy, SmartRetry, Wait};
pub use scenario::{Downstream, Job, Scenario};
pub use scenarios::builtin;

/// No policy gets more than this many attempts for one job (nor, by the scenario's
/// deadline, more time).
const MAX_ATTEMPTS: u32 = 50;

/// Figures for one (scenario, policy), over the failed jobs after warm-up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    pub scenario: String,
    pub policy: String,
    pub seed: u64,
    pub failed_jobs: u32,
    pub recovered: u32,
    /// Jobs not recovered by their deadline.
    pub lost: u32,
    /// Lost jobs the oracle recovers within the deadline: a retry at the right time
    /// would have saved them (the others never recover, or not in time).
    pub lost_recoverable: u32,
    pub success_rate: f64,
    pub mean_time_to_success_ms: f64,
    pub p95_time_to_success_ms: f64,
    /// The scenario's deadline: the horizon of the restricted mean.
    pub deadline_ms: u64,
    /// Restricted mean time to success: the mean over *every* failed job of its time to
    /// success, a lost job counting the deadline (a dead letter someone must replay). The
    /// area under the survival curve up to the deadline; fair when policies recover
    /// different jobs.
    pub restricted_mean_tts_ms: f64,
    /// Over the jobs both this policy and smartretry recovered: how many, this policy's
    /// mean time to success and smartretry's (0 jobs for smartretry itself).
    pub paired_jobs: u32,
    pub paired_tts_ms: f64,
    pub paired_smartretry_tts_ms: f64,
    pub retries_per_job: f64,
    pub retries_per_recovered_job: f64,
    pub wasted_retries_per_job: f64,
    /// Retries spent on failures no retry can fix (validation, auth, not found).
    pub retries_on_permanent_failures: u32,
    /// Share of retried jobs whose first retry succeeded.
    pub first_retry_success: f64,
}

#[derive(Debug, Clone, Default)]
struct JobState {
    first_failure_ms: Option<u64>,
    last_attempt_ms: u64,
    retries: u32,
    wasted: u32,
    recovered_after_ms: Option<u64>,
    recovered_on_attempt: u32,
    first_retry_delay_ms: Option<u64>,
    permanent: bool,
    /// The oracle recovers it within the deadline.
    recoverable: bool,
    deadline_ms: u64,
    last_error_class: String,
    last_status: Option<u16>,
    /// The next attempt and when it is due (a check-in that releases the job moves it
    /// earlier).
    pending_attempt: u32,
    next_attempt_ms: u64,
}

impl JobState {
    /// No attempt starts after this.
    fn deadline_at(&self) -> u64 {
        self.first_failure_ms.unwrap_or(0) + self.deadline_ms
    }
}

enum Outcome {
    Ok,
    Fail { status: Option<u16>, error_class: String, retry_after_ms: Option<u64> },
}

/// The downstream's live state (only the rate limiter has any: calls per job type and
/// window, each job type being its own downstream).
struct LiveDownstream<'s> {
    scenario: &'s Scenario,
    outages: Vec<(u64, u64)>,
    window_calls: HashMap<(u32, u64), u32>,
    seed: u64,
}

impl<'s> LiveDownstream<'s> {
    fn new(scenario: &'s Scenario, jobs: &[Job], seed: u64) -> Self {
        let until = jobs.iter().map(|j| j.at_ms).max().unwrap_or(scenario.start_ms) + scenario.deadline_ms;
        LiveDownstream {
            scenario,
            outages: scenario.outage_windows(until),
            window_calls: HashMap::new(),
            seed,
        }
    }

    fn outage_at(&self, t: u64) -> Option<(u64, u64)> {
        let i = self.outages.partition_point(|w| w.1 <= t);
        self.outages.get(i).copied().filter(|w| w.0 <= t)
    }

    fn attempt(&mut self, job: &Job, attempt: u32, first_failure: Option<u64>, now: u64) -> Outcome {
        match &self.scenario.downstream {
            scenario::Downstream::RateLimit { window_ms, limit, retry_after_probability } => {
                let window = now / window_ms;
                let calls = self.window_calls.entry((job.job_type, window)).or_default();
                *calls += 1;
                if *calls <= *limit {
                    return Outcome::Ok;
                }
                let roll =
                    smartretry::rand01(mix64(self.seed ^ (u64::from(job.id) << 8) ^ u64::from(attempt)));
                let reset_in = (window + 1) * window_ms - now;
                Outcome::Fail {
                    status: Some(429),
                    error_class: "rate_limit".into(),
                    retry_after_ms: (roll < *retry_after_probability)
                        .then(|| reset_in.div_ceil(1_000) * 1_000),
                }
            }
            scenario::Downstream::Outages { status, error_class, .. } if self.outage_at(now).is_some() => {
                Outcome::Fail { status: *status, error_class: error_class.clone(), retry_after_ms: None }
            }
            _ => match &job.transient {
                Some(t) => {
                    let elapsed = first_failure.map_or(0, |f| now - f);
                    let recovered =
                        first_failure.is_some() && t.recovers_after_ms.is_some_and(|r| elapsed >= r);
                    if recovered {
                        Outcome::Ok
                    } else {
                        Outcome::Fail {
                            status: t.status,
                            error_class: t.error_class.clone(),
                            retry_after_ms: None,
                        }
                    }
                }
                None => Outcome::Ok,
            },
        }
    }

    /// When the job would first succeed, had it one perfectly timed retry (the oracle).
    /// Behind a rate limit that is the next window's start, even where that window fills
    /// again (bursts): a lower bound no policy need reach.
    fn recovery_time(&self, job: &Job, first_failure: u64) -> Option<u64> {
        let own = match &job.transient {
            Some(t) => first_failure.checked_add(t.recovers_after_ms?)?,
            None => first_failure,
        };
        let outage_end = self.outage_at(first_failure).map_or(first_failure, |w| w.1);
        let reset = match &self.scenario.downstream {
            scenario::Downstream::RateLimit { window_ms, .. } => (first_failure / window_ms + 1) * window_ms,
            _ => first_failure,
        };
        Some(own.max(outage_end).max(reset))
    }

    /// Whether a failure at `first_failure` can be recovered within the deadline.
    fn recoverable(&self, job: &Job, first_failure: u64, permanent: bool) -> bool {
        !permanent
            && self
                .recovery_time(job, first_failure)
                .is_some_and(|t| t - first_failure <= self.scenario.deadline_ms)
    }
}

fn permanent(status: Option<u16>, error_class: &str) -> bool {
    !smartretry::classify(status, Some(error_class), None).retryable()
}

/// One policy's run: its figures and, per job, when it recovered (measured jobs only).
#[derive(Debug, Clone)]
pub struct Run {
    pub figures: Figures,
    /// Indexed by job id: `Some(time to success)` for measured jobs that recovered.
    pub recovered_after_ms: Vec<Option<u64>>,
    /// Indexed by job id: the delay before the first retry, for measured jobs retried.
    pub first_retry_delay_ms: Vec<Option<u64>>,
    pub measured: Vec<bool>,
}

impl Run {
    fn new(scenario: &Scenario, policy: &str, seed: u64, jobs: &[Job], state: &[JobState]) -> Run {
        let measured_ids = measured_jobs(jobs, state, scenario.warmup);
        let mut measured = vec![false; jobs.len()];
        for &i in &measured_ids {
            measured[i] = true;
        }
        Run {
            figures: figures(scenario, policy, seed, measured_ids.iter().map(|&i| &state[i])),
            recovered_after_ms: state
                .iter()
                .zip(&measured)
                .map(|(s, &m)| s.recovered_after_ms.filter(|_| m))
                .collect(),
            first_retry_delay_ms: state
                .iter()
                .zip(&measured)
                .map(|(s, &m)| s.first_retry_delay_ms.filter(|_| m))
                .collect(),
            measured,
        }
    }
}

/// Mean time to success of `a` and of `b` over the jobs both recovered, and how many.
pub fn paired_time_to_success(a: &Run, b: &Run) -> (f64, f64, usize) {
    let both: Vec<(u64, u64)> = a
        .recovered_after_ms
        .iter()
        .zip(&b.recovered_after_ms)
        .filter_map(|(x, y)| Some(((*x)?, (*y)?)))
        .collect();
    let n = both.len().max(1) as f64;
    let mean = |f: fn(&(u64, u64)) -> u64| both.iter().map(f).sum::<u64>() as f64 / n;
    (mean(|p| p.0), mean(|p| p.1), both.len())
}

/// Run one policy through one scenario.
pub fn run(scenario: &Scenario, jobs: &[Job], policy: &mut dyn Policy, seed: u64) -> Run {
    let types = scenario.job_type_names();
    let mut downstream = LiveDownstream::new(scenario, jobs, seed);
    let mut state = vec![JobState::default(); jobs.len()];
    // (when, job, attempt, check-in interval): an attempt when the interval is 0, else
    // a waiting job checking in.
    let mut queue: BinaryHeap<Reverse<(u64, u32, u32, u64)>> =
        jobs.iter().map(|j| Reverse((j.at_ms, j.id, 1, 0))).collect();
    while let Some(Reverse((now, id, attempt, check_in))) = queue.pop() {
        let job = &jobs[id as usize];
        let job_type = &types[job.job_type as usize];
        let st = &mut state[id as usize];
        if check_in > 0 {
            let due = st.pending_attempt == attempt && st.next_attempt_ms > now;
            if due && policy.released(job_type, st.last_attempt_ms, now) {
                st.next_attempt_ms = now;
                queue.push(Reverse((now, id, attempt, 0)));
            } else if due && now + check_in < st.next_attempt_ms && now + check_in <= st.deadline_at() {
                queue.push(Reverse((now + check_in, id, attempt, check_in)));
            }
            continue;
        }
        if attempt > 1 && (st.pending_attempt != attempt || st.next_attempt_ms != now) {
            continue; // superseded: a check-in released the job earlier
        }
        let delay = now - st.last_attempt_ms.max(job.at_ms).min(now);
        st.last_attempt_ms = now;
        if attempt > 1 {
            st.retries += 1;
            st.first_retry_delay_ms.get_or_insert(delay);
        }
        let outcome = downstream.attempt(job, attempt, st.first_failure_ms, now);
        let (status, error_class, retry_after_ms) = match outcome {
            Outcome::Ok if attempt == 1 => {
                if scenario.reports_first_successes {
                    policy.on_first_success(job_type, job.tenant.as_deref(), now);
                }
                continue;
            }
            Outcome::Ok => (None, String::new(), None),
            Outcome::Fail { status, error_class, retry_after_ms } => (status, error_class, retry_after_ms),
        };
        let first = *st.first_failure_ms.get_or_insert(now);
        let view = FailureView {
            job_type,
            job_id: id,
            tenant: job.tenant.as_deref(),
            attempt,
            now_ms: now,
            since_first_failure_ms: now - first,
            delay_ms: if attempt == 1 { 0 } else { delay },
            status,
            error_class: &error_class,
            retry_after_ms,
        };
        if attempt > 1 {
            let success = status.is_none() && error_class.is_empty();
            policy.on_outcome(&OutcomeView {
                failure: view.clone(),
                success,
                retried_error_class: &st.last_error_class,
                retried_status: st.last_status,
            });
            if success {
                st.recovered_after_ms = Some(now - first);
                st.recovered_on_attempt = attempt;
                continue;
            }
            st.wasted += 1;
        } else {
            st.permanent = permanent(status, &error_class);
            st.deadline_ms = scenario.deadline_ms;
            st.recoverable = downstream.recoverable(job, first, st.permanent);
        }
        st.last_error_class.clone_from(&error_class);
        st.last_status = status;
        if attempt >= MAX_ATTEMPTS {
            continue;
        }
        // A retry due after the deadline is never made (the job is a dead letter then);
        // a job told to check in still does, up to the deadline.
        if let Some(Wait { delay_ms, check_in_ms }) = policy.on_failure(&view) {
            st.pending_attempt = attempt + 1;
            st.next_attempt_ms = now + delay_ms;
            if now + delay_ms <= st.deadline_at() {
                queue.push(Reverse((now + delay_ms, id, attempt + 1, 0)));
            }
            if let Some(every) = check_in_ms.filter(|&e| e > 0 && e < delay_ms && now + e <= st.deadline_at())
            {
                queue.push(Reverse((now + every, id, attempt + 1, every)));
            }
        }
    }
    Run::new(scenario, policy.name(), seed, jobs, &state)
}

/// The failed jobs that count: all but the first `warmup` share, in order of failure.
fn measured_jobs(jobs: &[Job], state: &[JobState], warmup: f64) -> Vec<usize> {
    let mut failed: Vec<usize> = (0..jobs.len()).filter(|&i| state[i].first_failure_ms.is_some()).collect();
    failed.sort_by_key(|&i| (state[i].first_failure_ms, i));
    let skip = (failed.len() as f64 * warmup) as usize;
    failed.split_off(skip)
}

/// The oracle: one retry exactly when each job would recover.
pub fn oracle(scenario: &Scenario, jobs: &[Job], seed: u64) -> Run {
    let mut downstream = LiveDownstream::new(scenario, jobs, seed);
    let mut state = vec![JobState::default(); jobs.len()];
    for job in jobs {
        if let Outcome::Fail { status, error_class, .. } = downstream.attempt(job, 1, None, job.at_ms) {
            let st = &mut state[job.id as usize];
            st.first_failure_ms = Some(job.at_ms);
            st.permanent = permanent(status, &error_class);
            st.recoverable = downstream.recoverable(job, job.at_ms, st.permanent);
            if let Some(at) = downstream.recovery_time(job, job.at_ms).filter(|_| st.recoverable) {
                st.retries = 1;
                st.recovered_after_ms = Some(at - job.at_ms);
                st.recovered_on_attempt = 2;
            }
        }
    }
    Run::new(scenario, "oracle", seed, jobs, &state)
}

fn figures<'a>(
    scenario: &Scenario,
    policy: &str,
    seed: u64,
    jobs: impl Iterator<Item = &'a JobState>,
) -> Figures {
    let jobs: Vec<&JobState> = jobs.collect();
    let n = jobs.len().max(1) as f64;
    let mut times: Vec<u64> = jobs.iter().filter_map(|j| j.recovered_after_ms).collect();
    times.sort_unstable();
    let recovered = times.len();
    let retries: u32 = jobs.iter().map(|j| j.retries).sum();
    let p95 = times.get(((recovered as f64 * 0.95).ceil() as usize).saturating_sub(1)).copied().unwrap_or(0);
    let lost = (jobs.len() - recovered) as u64;
    Figures {
        scenario: scenario.name.clone(),
        policy: policy.to_string(),
        seed,
        failed_jobs: jobs.len() as u32,
        recovered: recovered as u32,
        lost: lost as u32,
        lost_recoverable: jobs.iter().filter(|j| j.recoverable && j.recovered_after_ms.is_none()).count()
            as u32,
        success_rate: recovered as f64 / n,
        mean_time_to_success_ms: if recovered == 0 {
            0.0
        } else {
            times.iter().sum::<u64>() as f64 / recovered as f64
        },
        p95_time_to_success_ms: p95 as f64,
        deadline_ms: scenario.deadline_ms,
        restricted_mean_tts_ms: (times.iter().sum::<u64>() + lost * scenario.deadline_ms) as f64 / n,
        paired_jobs: 0,
        paired_tts_ms: 0.0,
        paired_smartretry_tts_ms: 0.0,
        retries_per_job: f64::from(retries) / n,
        retries_per_recovered_job: f64::from(retries) / recovered.max(1) as f64,
        wasted_retries_per_job: f64::from(jobs.iter().map(|j| j.wasted).sum::<u32>()) / n,
        retries_on_permanent_failures: jobs.iter().filter(|j| j.permanent).map(|j| j.retries).sum(),
        first_retry_success: {
            let retried = jobs.iter().filter(|j| j.retries > 0).count().max(1) as f64;
            jobs.iter().filter(|j| j.recovered_on_attempt == 2).count() as f64 / retried
        },
    }
}

/// The attempt history the engine's rules tier (`smartretry_rules_only`) recorded in a
/// scenario, in the API's Attempt shape: training data for the ML tier. The rules spread
/// their retries over the whole schedule, so a model sees both sides of each recovery
/// time; the learning engine's own history crowds at its plan, and a model trained on it
/// learns little about any other delay.
pub fn history(scenario: &Scenario, seed: u64) -> Vec<smartretry::Attempt> {
    let jobs = scenario.jobs(seed);
    let mut policy = SmartRetry::rules_only(seed);
    policy.history = Some(Vec::new());
    run(scenario, &jobs, &mut policy, seed);
    policy.history.unwrap_or_default()
}

/// smartretry with each idea switched off in turn, plus the oracle.
pub fn ablations(scenario: &Scenario, seed: u64) -> Vec<Run> {
    let jobs = scenario.jobs(seed);
    let mut rows: Vec<Run> =
        SmartRetry::ablations(seed).iter_mut().map(|p| run(scenario, &jobs, p, seed)).collect();
    rows.push(oracle(scenario, &jobs, seed));
    with_paired_figures(&mut rows);
    rows
}

/// Every policy (baselines; smartretry rules-only, as users get it and at the API
/// document's attempts; with an ML model when `model` names one that loads), the
/// best-schedule bound where it applies, and the oracle.
pub fn compare(scenario: &Scenario, seed: u64, model: Option<&std::path::Path>) -> Vec<Run> {
    let jobs = scenario.jobs(seed);
    let mut rows: Vec<Run> = Vec::new();
    let mut policies: Vec<Box<dyn Policy>> = baselines(seed);
    policies.push(Box::new(SmartRetry::rules_only(seed)));
    policies.push(Box::new(SmartRetry::learning(seed)));
    policies.push(Box::new(SmartRetry::document_attempts(seed)));
    if let Some(Ok(ml)) = model.map(|m| SmartRetry::with_model(seed, m)) {
        policies.push(Box::new(ml));
    }
    for p in &mut policies {
        rows.push(run(scenario, &jobs, p.as_mut(), seed));
    }
    if let Ok(bound) = bound::Bound::find(scenario, &jobs, BOUND_RETRY_CAP, BOUND_TARGET) {
        rows.push(run(scenario, &jobs, &mut bound.policy(), seed));
    }
    rows.push(oracle(scenario, &jobs, seed));
    with_paired_figures(&mut rows);
    rows
}

/// Fill in the paired times against smartretry (over the jobs both recovered).
fn with_paired_figures(runs: &mut [Run]) {
    let smart = runs.iter().position(|r| r.figures.policy == SmartRetry::HEADLINE);
    for i in 0..runs.len() {
        let paired = smart.filter(|&s| s != i).map(|s| paired_time_to_success(&runs[i], &runs[s]));
        if let Some((theirs, mine, n)) = paired {
            let figures = &mut runs[i].figures;
            figures.paired_jobs = n as u32;
            figures.paired_tts_ms = theirs;
            figures.paired_smartretry_tts_ms = mine;
        }
    }
}

/// The best-schedule bound of a scenario whose jobs recover on their own clocks, or why
/// there is none.
pub fn bound(scenario: &Scenario, seed: u64) -> Result<bound::Bound, String> {
    bound::Bound::find(scenario, &scenario.jobs(seed), BOUND_RETRY_CAP, BOUND_TARGET)
}

/// The goal the bound is measured against: time to success within this multiple of the
/// oracle's, with at most this many retries per recovered job.
pub const BOUND_TARGET: f64 = 1.2;
pub const BOUND_RETRY_CAP: f64 = 1.5;
