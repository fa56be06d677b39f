//! Whether one more retry may go, by the shared guardrails: the concurrency cap, the
//! retry budget, a tenant's share of it and adaptive throttling, each in the caller's
//! priority's part ([`PriorityShares`](super::settings::PriorityShares)); with a fleet
//! store, the other workers' spending counts against the same limits.

use serde::{Deserialize, Serialize};

use crate::api::Guardrail;
use crate::store::FleetCounts;
use crate::window::SlidingWindow;

use super::settings::Guardrails;
use super::state::GuardState;

/// A stateful guardrail that refused a retry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Refusal {
    /// `allowed` is the caller's priority's part of `limit`.
    Concurrency {
        in_flight: u64,
        allowed: u64,
        limit: u32,
    },
    Tenant {
        used: u64,
        allowed: u64,
    },
    /// `allowed` is the caller's priority's part of `total`.
    Budget {
        used: u64,
        allowed: u64,
        total: u64,
    },
}

/// A retry the stateful guardrails let through.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Admitted {
    /// Adaptive throttling rejected it with this probability: defer it.
    pub throttled: Option<f64>,
    /// The global limit a critical retry went past (`respect_global_backpressure: false`).
    pub bypassed: Option<&'static str>,
}

impl Refusal {
    pub fn guardrail(self) -> Guardrail {
        match self {
            Refusal::Concurrency { .. } => Guardrail::Concurrency,
            Refusal::Tenant { .. } => Guardrail::TenantFairness,
            Refusal::Budget { .. } => Guardrail::RetryBudget,
        }
    }
}

/// Who a retry is for.
#[derive(Debug, Clone, Copy)]
pub struct RetryContext<'a> {
    pub job_type: &'a str,
    pub tenant: Option<&'a str>,
    pub job_id: Option<&'a str>,
    pub retry_at_ms: u64,
    /// The caller's priority's share of the budget and caps
    /// ([`PriorityShares::of`](super::settings::PriorityShares::of)).
    pub share: f64,
    /// Past the global budget, throttling and concurrency cap (critical work whose
    /// context does not respect global backpressure).
    pub bypass_global: bool,
}

/// The retry budget as operators see it (`/metrics`, the TUI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetSnapshot {
    pub window_ms: u64,
    /// First attempts seen in the window (the budget grows with them).
    pub first_attempts: u64,
    /// Retries granted in the window.
    pub retries: u64,
    /// Retries the window allows: the per-second floor plus `max_budget_percent` of first attempts.
    pub allowed: u64,
}

impl GuardState {
    /// The shared retry budget at `now`: what was spent and what the window allows.
    pub fn budget(&mut self, now: u64, g: &Guardrails) -> BudgetSnapshot {
        let (first_attempts, retries) = self.budget.sum(now);
        // A fleet's other workers spend the same budget (zero when alone).
        let (first_attempts, retries) =
            (first_attempts + self.fleet.first_attempts, retries + self.fleet.retries);
        let window_ms = self.budget.window_ms();
        let window_s = window_ms as f64 / 1_000.0;
        let allowed = (g.min_retries_per_sec * window_s
            + g.max_budget_percent / 100.0 * first_attempts as f64)
            .floor() as u64;
        BudgetSnapshot { window_ms, first_attempts, retries, allowed }
    }

    /// Check the stateful guardrails for one retry; with `commit`, spend its share of each.
    /// `roll` is a uniform random number in [0, 1) for adaptive throttling; `Ok(Some(p))`
    /// means the retry was throttled (with probability `p`) and must be deferred.
    pub fn admit_retry(
        &mut self,
        ctx: &RetryContext<'_>,
        now: u64,
        roll: f64,
        g: &Guardrails,
        commit: bool,
    ) -> std::result::Result<Admitted, Refusal> {
        let mut admitted = Admitted::default();
        let part =
            |total: u64| if ctx.share >= 1.0 { total } else { (total as f64 * ctx.share).floor() as u64 };
        if let Some(limit) = g.max_concurrent_retries {
            if self.in_flight.len() >= part(u64::from(limit)) as usize {
                self.in_flight.retain(|_, expires| *expires > now);
            }
            let in_flight = self.in_flight.len() as u64 + self.fleet.in_flight;
            let replacing = ctx.job_id.is_some_and(|id| self.in_flight.contains_key(id));
            let allowed = part(u64::from(limit));
            if in_flight >= allowed && !replacing {
                if !ctx.bypass_global {
                    return Err(Refusal::Concurrency { in_flight, allowed, limit });
                }
                admitted.bypassed = Some("concurrency");
            }
        }
        let BudgetSnapshot { retries, allowed: total, .. } = self.budget(now, g);
        let allowed = part(total);
        if retries >= allowed {
            if !ctx.bypass_global {
                return Err(Refusal::Budget { used: retries, allowed, total });
            }
            admitted.bypassed = Some("retry_budget");
        }
        if let (Some(t), true) = (ctx.tenant, g.per_tenant_limits) {
            let tenant_allowed = ((total as f64) * g.tenant_max_share).ceil() as u64;
            let fleet_used = self.fleet_tenants.get(t).copied().unwrap_or(0);
            let used = self.tenants.get_mut(t).map_or(0, |w| w.sum(now).1) + fleet_used;
            if used >= tenant_allowed {
                return Err(Refusal::Tenant { used, allowed: tenant_allowed });
            }
        }
        if g.adaptive_throttle {
            let p = self.downstreams.get_mut(ctx.job_type).map_or(0.0, |d| d.rejection(now, g));
            if roll < p {
                if ctx.bypass_global {
                    admitted.bypassed = admitted.bypassed.or(Some("adaptive_throttle"));
                } else {
                    admitted.throttled = Some(p);
                }
            }
        }
        if commit {
            self.budget.add(now, 0, 1);
            if let (Some(t), true) = (ctx.tenant, g.per_tenant_limits) {
                self.tenants
                    .get_or_insert_mut_ref(t, || SlidingWindow::new(g.budget_window_ms))
                    .add(now, 0, 1);
            }
            if g.max_concurrent_retries.is_some() {
                let key: Box<str> = match ctx.job_id {
                    Some(id) => id.into(),
                    None => {
                        self.anonymous += 1;
                        format!("\u{0}anonymous-{}", self.anonymous).into()
                    }
                };
                self.in_flight.insert(key, ctx.retry_at_ms.saturating_add(g.in_flight_ttl_ms));
            }
        }
        Ok(admitted)
    }

    /// This worker's share of the fleet-wide guardrails, over the budget window.
    pub fn own_counts(&mut self, now: u64) -> FleetCounts {
        let (first_attempts, retries) = self.budget.sum(now);
        let tenant_retries = self
            .tenants
            .iter_mut()
            .filter_map(|(t, w)| Some((t.clone(), w.sum(now).1)).filter(|(_, n)| *n > 0))
            .collect();
        FleetCounts { first_attempts, retries, in_flight: self.in_flight.len() as u64, tenant_retries }
    }

    /// What the rest of the fleet spends, added to this worker's counts by every check.
    pub fn set_fleet(&mut self, mut others: FleetCounts) {
        self.fleet_tenants = std::mem::take(&mut others.tenant_retries).into_iter().collect();
        self.fleet = others;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{Attempt, Features, Priority};
    use crate::breaker::BreakerConfig;

    fn ctx<'a>(tenant: Option<&'a str>, job_id: Option<&'a str>) -> RetryContext<'a> {
        RetryContext { job_type: "pay", tenant, job_id, retry_at_ms: 0, share: 1.0, bypass_global: false }
    }

    #[test]
    fn budget_caps_retries_at_a_percentage_of_first_attempts() {
        let g = Guardrails { min_retries_per_sec: 0.0, per_tenant_limits: false, ..Default::default() };
        let b = BreakerConfig::default();
        let mut s = GuardState::new(100, &g);
        for _ in 0..50 {
            s.on_failure(&Features::new("pay", 1), false, 0, &g, &b);
        }
        let granted = (0..50).filter(|_| s.admit_retry(&ctx(None, None), 0, 0.5, &g, true).is_ok()).count();
        assert_eq!(granted, 10, "20 % of 50 first attempts");
        // The window slides: a minute later the budget is fresh but there are no requests.
        assert!(matches!(
            s.admit_retry(&ctx(None, None), 61_000, 0.5, &g, true),
            Err(Refusal::Budget { allowed: 0, .. })
        ));
    }

    #[test]
    fn a_noisy_tenant_cannot_take_the_whole_budget() {
        let g = Guardrails { min_retries_per_sec: 0.0, ..Default::default() };
        let b = BreakerConfig::default();
        let mut s = GuardState::new(100, &g);
        for _ in 0..100 {
            s.on_failure(&Features::new("pay", 1).with_tenant("noisy"), false, 0, &g, &b);
        }
        s.on_failure(&Features::new("pay", 1).with_tenant("quiet"), false, 0, &g, &b);
        let noisy =
            (0..100).filter(|_| s.admit_retry(&ctx(Some("noisy"), None), 0, 0.5, &g, true).is_ok()).count();
        assert_eq!(noisy, 10, "half of the 20-retry budget (20 % of 101 first attempts)");
        assert!(s.admit_retry(&ctx(Some("quiet"), None), 0, 0.5, &g, true).is_ok());
    }

    #[test]
    fn adaptive_throttle_follows_the_sre_formula() {
        let g = Guardrails { min_retries_per_sec: 1_000.0, ..Default::default() };
        let b = BreakerConfig { enabled: false, ..Default::default() };
        let mut s = GuardState::new(100, &g);
        s.on_outcome(&Attempt::new("j0", "pay", 1, true), 0, &g, &b); // 1 request, 1 accept
        for _ in 0..9 {
            s.on_failure(&Features::new("pay", 1), false, 0, &g, &b);
        }
        // p = (10 − 2·1) / 11
        let p = 8.0 / 11.0;
        assert!(s.admit_retry(&ctx(None, None), 0, p + 0.01, &g, false).is_ok());
        assert_eq!(s.admit_retry(&ctx(None, None), 0, p - 0.01, &g, false).map(|a| a.throttled), Ok(Some(p)));
    }

    #[test]
    fn concurrency_cap_releases_on_outcome_or_expiry() {
        let g = Guardrails { max_concurrent_retries: Some(2), in_flight_ttl_ms: 1_000, ..Default::default() };
        let b = BreakerConfig::default();
        let mut s = GuardState::new(100, &g);
        assert!(s.admit_retry(&ctx(None, Some("a")), 0, 0.5, &g, true).is_ok());
        assert!(s.admit_retry(&ctx(None, Some("b")), 0, 0.5, &g, true).is_ok());
        assert!(matches!(
            s.admit_retry(&ctx(None, Some("c")), 0, 0.5, &g, true),
            Err(Refusal::Concurrency { .. })
        ));
        assert!(s.admit_retry(&ctx(None, Some("a")), 0, 0.5, &g, true).is_ok(), "same job, same slot");
        s.on_outcome(&Attempt::new("a", "pay", 2, false), 10, &g, &b);
        assert!(s.admit_retry(&ctx(None, Some("c")), 10, 0.5, &g, true).is_ok());
        assert!(s.admit_retry(&ctx(None, Some("d")), 2_000, 0.5, &g, true).is_ok(), "b and c expired");
    }

    #[test]
    fn lower_priorities_leave_headroom_and_critical_may_bypass() {
        let g = Guardrails { min_retries_per_sec: 0.0, per_tenant_limits: false, ..Default::default() };
        let b = BreakerConfig::default();
        let mut s = GuardState::new(100, &g);
        for _ in 0..50 {
            s.on_failure(&Features::new("pay", 1), false, 0, &g, &b);
        }
        let low = RetryContext { share: g.priority_shares.of(Some(Priority::Low)), ..ctx(None, None) };
        let granted = (0..10).filter(|_| s.admit_retry(&low, 0, 0.5, &g, true).is_ok()).count();
        assert_eq!(granted, 5, "low may use half of the 10-retry budget");
        assert_eq!(
            s.admit_retry(&low, 0, 0.5, &g, true),
            Err(Refusal::Budget { used: 5, allowed: 5, total: 10 })
        );
        let critical = RetryContext { share: 1.0, ..ctx(None, None) };
        let granted = (0..10).filter(|_| s.admit_retry(&critical, 0, 0.5, &g, true).is_ok()).count();
        assert_eq!(granted, 5, "the reserved half is there for higher priorities");
        let bypass = RetryContext { bypass_global: true, ..critical };
        assert_eq!(s.admit_retry(&bypass, 0, 0.5, &g, true).map(|a| a.bypassed), Ok(Some("retry_budget")));
    }
}
