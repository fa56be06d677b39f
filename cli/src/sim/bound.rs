//! The best any policy can do without seeing a job's own recovery time.
//!
//! When jobs recover on their own clocks (a transient failure, drawn per job), a policy
//! can learn the *distribution* of recovery times, never the time of the job in hand: all
//! it knows about that job is "not recovered yet". So the best it can ever do is a fixed
//! schedule of retry times since the first failure, chosen for the distribution. This
//! module finds that schedule for each cohort (jobs sharing one recovery distribution: a
//! tenant's own failures, or the downstream's before and after a drift), knowing every
//! distribution exactly and optimising on the very jobs of the run. Running it through
//! the simulator gives the `best_schedule_bound` row: a lower bound on time to success
//! for a given number of retries, tighter than the oracle (who also knows each job).
//!
//! A recovery after the scenario's deadline counts as none (the job is lost either way),
//! so no schedule retries later than the deadline. Job types do not matter here: the
//! bound knows each cohort's distribution, as if every type had already been learned.
//!
//! Scenarios whose jobs recover together (outages, rate-limit windows) are about shared
//! state, where the oracle is the right reference; no bound is computed for them.

use std::collections::HashMap;

use smartretry::{mix64, rand01};

use super::policies::{FailureView, Policy, Wait};
use super::scenario::{Downstream, Job, Scenario};

/// Retry times (since the first failure) a schedule may use: this many quantiles of the
/// cohort's recovery times, plus the slowest one.
const CANDIDATES: usize = 40;
/// Retries before the last in a schedule (the last waits for the slowest recovery).
const MAX_EARLY_RETRIES: usize = 3;

/// One schedule's totals over a cohort.
#[derive(Debug, Clone)]
struct Schedule {
    times: Vec<u64>,
    tts_sum: f64,
    retries: f64,
}

/// A cohort: the jobs drawing their recovery from one distribution.
struct Cohort {
    recovered: f64,
    recovery_sum: f64,
    options: Vec<Schedule>,
}

impl Cohort {
    fn new(mut times: Vec<Option<u64>>) -> Option<Cohort> {
        let never = times.iter().filter(|t| t.is_none()).count() as f64;
        let mut finite: Vec<u64> = times.drain(..).flatten().collect();
        finite.sort_unstable();
        let &slowest = finite.last()?;
        let mut candidates: Vec<u64> =
            (1..CANDIDATES).map(|i| finite[(finite.len() * i / CANDIDATES).min(finite.len() - 1)]).collect();
        candidates.retain(|&t| t < slowest);
        candidates.dedup();
        let recovered_by = |t: u64| finite.partition_point(|&r| r <= t) as f64;
        let evaluate = |early: &[u64]| {
            let mut times = early.to_vec();
            times.push(slowest);
            let (mut tts_sum, mut retries, mut before) = (0.0, 0.0, 0.0);
            for (i, &t) in times.iter().enumerate() {
                let now = recovered_by(t);
                tts_sum += t as f64 * (now - before);
                retries += (i + 1) as f64 * (now - before);
                before = now;
            }
            retries += times.len() as f64 * never;
            Schedule { times, tts_sum, retries }
        };
        let mut options = vec![evaluate(&[])];
        let mut pick = Vec::with_capacity(MAX_EARLY_RETRIES);
        subsets(&candidates, 0, MAX_EARLY_RETRIES, &mut pick, &mut |early| options.push(evaluate(early)));
        Some(Cohort {
            recovered: finite.len() as f64,
            recovery_sum: finite.iter().map(|&t| t as f64).sum(),
            options,
        })
    }

    /// The schedule minimising time plus `price` per retry.
    fn cheapest(&self, price: f64) -> &Schedule {
        self.options
            .iter()
            .min_by(|a, b| (a.tts_sum + price * a.retries).total_cmp(&(b.tts_sum + price * b.retries)))
            .unwrap_or(&self.options[0])
    }
}

/// Every increasing choice of up to `left` items from `items[from..]`.
fn subsets(items: &[u64], from: usize, left: usize, pick: &mut Vec<u64>, visit: &mut impl FnMut(&[u64])) {
    if left == 0 {
        return;
    }
    for i in from..items.len() {
        pick.push(items[i]);
        visit(pick);
        subsets(items, i + 1, left - 1, pick, visit);
        pick.pop();
    }
}

/// The bound for one scenario: per cohort schedules, and what they achieve together.
#[derive(Debug)]
pub struct Bound {
    /// Per job id, the schedule of its cohort (empty for jobs that did not fail).
    schedules: Vec<Vec<u64>>,
    /// Mean time to success of the bound schedules, as a multiple of the oracle's.
    pub ratio: f64,
    pub retries_per_recovered: f64,
    /// The fewest retries per recovered job any schedule needs for ≤ `target` × oracle.
    pub retries_for_target: Option<f64>,
    pub target: f64,
    pub retry_cap: f64,
    /// The lower convex hull of (retries per recovered job, × oracle), fewest retries first.
    frontier: Vec<(f64, f64)>,
}

/// Which distribution a job's recovery time came from, or `None` when it did not fail
/// on its own clock (the same rules as [`Scenario::jobs`]).
fn cohort_of(scenario: &Scenario, job: &Job) -> Option<String> {
    job.transient.as_ref()?;
    let own = job
        .tenant
        .as_ref()
        .filter(|name| scenario.tenants.iter().any(|t| &&t.name == name && t.failure.is_some()));
    if let Some(tenant) = own {
        return Some(format!("tenant:{tenant}"));
    }
    match &scenario.downstream {
        Downstream::Transient { drift, drift_after, .. } => {
            let drifted = drift.is_some() && f64::from(job.id) >= drift_after * f64::from(scenario.calls);
            Some(if drifted { "drifted" } else { "base" }.into())
        }
        _ => None,
    }
}

impl Bound {
    /// The best schedules with at most `retry_cap` retries per recovered job, or why
    /// there are none (shared recoveries, or no job recovers in time).
    pub fn find(scenario: &Scenario, jobs: &[Job], retry_cap: f64, target: f64) -> Result<Bound, String> {
        if !matches!(scenario.downstream, Downstream::Transient { .. }) {
            return Err(
                "jobs recover together here (outage or rate-limit windows), so a fixed schedule per \
                        job is not the best a policy can do: the oracle is the reference"
                    .into(),
            );
        }
        let deadline = scenario.deadline_ms;
        let mut members: HashMap<String, Vec<usize>> = HashMap::new();
        for job in jobs {
            if let Some(c) = cohort_of(scenario, job) {
                members.entry(c).or_default().push(job.id as usize);
            }
        }
        let mut names: Vec<&String> = members.keys().collect();
        names.sort();
        let cohorts: Vec<(&Vec<usize>, Cohort)> = names
            .into_iter()
            .filter_map(|name| {
                let ids = &members[name];
                let times = ids
                    .iter()
                    .map(|&i| jobs[i].transient.as_ref()?.recovers_after_ms.filter(|&t| t <= deadline))
                    .collect();
                Some((ids, Cohort::new(times)?))
            })
            .collect();
        if cohorts.is_empty() {
            return Err("no failed job recovers within the deadline".into());
        }
        let recovered: f64 = cohorts.iter().map(|(_, c)| c.recovered).sum();
        let oracle = cohorts.iter().map(|(_, c)| c.recovery_sum).sum::<f64>() / recovered.max(1.0);
        // Lagrangian sweep over the price of a retry: each price gives every cohort its
        // cheapest schedule; together they trace the frontier of time against retries.
        let frontier: Vec<(f64, f64, Vec<&Schedule>)> = (0..=400)
            .map(|i| if i == 0 { 0.0 } else { 10f64.powf(f64::from(i) / 40.0) })
            .map(|price| {
                let picks: Vec<&Schedule> = cohorts.iter().map(|(_, c)| c.cheapest(price)).collect();
                let tts: f64 = picks.iter().map(|o| o.tts_sum).sum();
                let retries: f64 = picks.iter().map(|o| o.retries).sum();
                (tts / recovered.max(1.0) / oracle.max(1.0), retries / recovered.max(1.0), picks)
            })
            .collect();
        // The best frontier point within the cap, and the next one beyond it: a policy may
        // mix the two (per job), which reaches any point on the segment between them.
        let within = frontier
            .iter()
            .filter(|f| f.1 <= retry_cap)
            .min_by(|a, b| a.0.total_cmp(&b.0))
            .ok_or_else(|| format!("no schedule stays within {retry_cap} retries per recovered job"))?;
        let beyond =
            frontier.iter().filter(|f| f.1 > retry_cap && f.0 < within.0).min_by(|a, b| a.1.total_cmp(&b.1));
        let (ratio, retries_per_recovered, mix) = match beyond {
            Some(b) => {
                let w = (retry_cap - within.1) / (b.1 - within.1);
                (within.0 + w * (b.0 - within.0), retry_cap, Some((w, &b.2)))
            }
            None => (within.0, within.1, None),
        };
        let retries_for_target =
            frontier.iter().filter(|f| f.0 <= target).map(|f| f.1).min_by(|a, b| a.total_cmp(b));
        let mut schedules = vec![Vec::new(); jobs.len()];
        for (c, (ids, _)) in cohorts.iter().enumerate() {
            for &id in *ids {
                let take_beyond = mix.is_some_and(|(w, _)| rand01(mix64(id as u64 ^ 0xb0_0d)) < w);
                let pick = match mix {
                    Some((_, picks)) if take_beyond => picks[c],
                    _ => within.2[c],
                };
                schedules[id].clone_from(&pick.times);
            }
        }
        let mut hull: Vec<(f64, f64)> = frontier.iter().map(|f| (f.1, f.0)).collect();
        hull.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        hull.dedup_by(|b, a| b.0 == a.0);
        Ok(Bound {
            schedules,
            ratio,
            retries_per_recovered,
            retries_for_target,
            target,
            retry_cap,
            frontier: hull,
        })
    }

    /// The least × oracle any blind policy reaches with `retries` per recovered job
    /// (mixing the two frontier schedules around it), `None` below the fewest possible.
    pub fn ratio_at(&self, retries: f64) -> Option<f64> {
        let i = self.frontier.partition_point(|p| p.0 <= retries);
        let below = *self.frontier.get(i.checked_sub(1)?)?;
        Some(match self.frontier.get(i) {
            Some(&above) => below.1 + (retries - below.0) / (above.0 - below.0) * (above.1 - below.1),
            None => below.1,
        })
    }

    /// The bound's schedules as a policy, so the simulator measures them like any other.
    pub fn policy(&self) -> BoundPolicy<'_> {
        BoundPolicy { bound: self }
    }
}

pub struct BoundPolicy<'b> {
    bound: &'b Bound,
}

impl Policy for BoundPolicy<'_> {
    fn name(&self) -> &str {
        "best_schedule_bound"
    }

    fn on_failure(&mut self, f: &FailureView<'_>) -> Option<Wait> {
        let schedule = self.bound.schedules.get(f.job_id as usize)?;
        let next = schedule.iter().find(|&&t| t > f.since_first_failure_ms)?;
        Some(Wait::sleep(next - f.since_first_failure_ms))
    }
}
