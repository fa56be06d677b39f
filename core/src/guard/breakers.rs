//! Each downstream's circuit breaker (`crate::breaker`) as the guard state holds it: its
//! word on a retry, its snapshots for operators and the store, and a state adopted from
//! the store or the fleet.

use crate::breaker::{Admit, Breaker, BreakerConfig, BreakerSnapshot};

use super::downstream::Downstream;
use super::settings::Guardrails;
use super::state::{bounded, note_transition, GuardState};

impl GuardState {
    /// The circuit breaker's word on a retry of `job_type`.
    pub fn breaker_admit(&mut self, job_type: &str, now: u64, b: &BreakerConfig, commit: bool) -> Admit {
        if !b.enabled {
            return Admit::Yes;
        }
        match self.downstreams.get_mut(job_type) {
            Some(Downstream { breaker: Some(br), reported, .. }) => {
                let admit = br.admit(now, b, commit);
                if commit {
                    note_transition(&mut self.transitions, job_type, reported, br.state(now), now);
                }
                admit
            }
            _ => Admit::Yes,
        }
    }

    pub fn breakers(&mut self, now: u64) -> Vec<BreakerSnapshot> {
        let mut out: Vec<_> = self
            .downstreams
            .iter_mut()
            .filter_map(|(k, d)| d.breaker.as_mut().map(|b| b.snapshot(k, now)))
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// Breakers that opened or closed since the last call, as they stood then.
    pub fn take_breaker_changes(&mut self) -> Vec<BreakerSnapshot> {
        let changes = std::mem::take(&mut self.breaker_changes);
        let mut out: Vec<BreakerSnapshot> = changes
            .into_iter()
            .filter_map(|(key, at)| {
                let d = self.downstreams.peek_mut(&key)?;
                d.breaker.as_mut().map(|b| b.snapshot(&key, at))
            })
            .collect();
        // The latest word per breaker.
        out.reverse();
        let mut seen = std::collections::HashSet::new();
        out.retain(|s| seen.insert(s.key.clone()));
        out
    }

    /// Hold `job_type`'s breaker open until `until` (a restored or fleet-shared state).
    pub fn adopt_open_breaker(
        &mut self,
        job_type: &str,
        until: u64,
        now: u64,
        g: &Guardrails,
        b: &BreakerConfig,
    ) {
        if !b.enabled || until <= now {
            return;
        }
        let d = bounded(&mut self.downstreams, self.max_keys, job_type, || Downstream::new(g));
        d.breaker.get_or_insert_with(|| Breaker::new(b)).adopt_open(until, now, b);
    }
}
