//! What operators read and change: policies, guardrails, the emergency stop, the
//! strategy in force, breakers and the retry budget, overrides, and a downstream's health.

use std::sync::atomic::Ordering;

use crate::api::{round3, Features};
use crate::breaker::BreakerSnapshot;
use crate::config::Strategy;
use crate::error::{Error, Result};
use crate::guard::{BudgetSnapshot, Guardrails};
use crate::health::{self, HealthReport};
use crate::overrides::Override;
use crate::policy::Policy;
use crate::time;

use super::Engine;

impl Engine {
    pub fn policies(&self) -> Vec<Policy> {
        self.settings().policies.list()
    }

    /// Add a policy (kept with the state and applied by every engine on the store).
    pub fn add_policy(&self, policy: Policy) -> Result<()> {
        self.operate(None, |e| {
            e.update_settings(|s| {
                s.policies.add(policy.clone())?;
                s.strategy.policies = s.policies.list();
                Ok(())
            })?;
            Ok(((), format!("policy {:?} added", policy.name)))
        })
    }

    pub fn remove_policy(&self, name: &str) -> Result<Policy> {
        self.operate(None, |e| {
            let mut removed = None;
            e.update_settings(|s| {
                removed = Some(s.policies.remove(name)?);
                s.strategy.policies = s.policies.list();
                Ok(())
            })?;
            let removed = removed.ok_or_else(|| Error::NotFound { what: format!("policy {name:?}") })?;
            Ok((removed, format!("policy {name:?} removed")))
        })
    }

    pub fn guardrails(&self) -> Guardrails {
        let mut g = self.settings().strategy.guardrails.clone();
        g.emergency_stop = self.emergency.load(Ordering::Relaxed);
        g
    }

    /// Replace the guardrails (validated first; the old ones stay on error); kept with
    /// the state and applied by every engine on the store.
    pub fn update_guardrails(&self, guardrails: Guardrails) -> Result<()> {
        guardrails.validate()?;
        self.operate(None, |e| {
            let before = e.guardrails();
            e.switch_emergency(guardrails.emergency_stop);
            e.guard().reconfigure(&guardrails);
            e.update_settings(|s| {
                s.strategy.guardrails = guardrails.clone();
                Ok(())
            })?;
            Ok(((), format!("guardrails: {}", changed_fields(&before, &guardrails))))
        })
    }

    /// Change some guardrail fields from a JSON object (the API's `PUT /guardrails`).
    pub fn patch_guardrails(&self, patch: &serde_json::Value) -> Result<Guardrails> {
        let next = self.guardrails().patched(patch)?;
        self.update_guardrails(next.clone())?;
        Ok(next)
    }

    /// The emergency stop: while on, nothing is retried. A durable store keeps it across
    /// restarts; a fleet store stops (or resumes) every worker. With who and why:
    /// [`Engine::set_emergency_stop`].
    pub fn emergency_stop(&self, on: bool) {
        if self.set_emergency_stop(on, None, None).is_err() {
            // Not kept with the state (the store failed): it holds here all the same.
            self.switch_emergency(on);
        }
    }

    /// Turn the stop on or off here (and tell the fleet's emergency key).
    pub(crate) fn switch_emergency(&self, on: bool) {
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
    /// The overrides in force, most specific first (expired ones are dropped).
    pub fn overrides(&self, now_ms: Option<u64>) -> Vec<Override> {
        let now = now_ms.unwrap_or_else(time::now_ms);
        let s = self.settings();
        if s.overrides.clone().purge(now) {
            let _ = self.update_settings(|s| {
                s.overrides.purge(now);
                Ok(())
            });
        }
        self.settings().overrides.list()
    }

    /// Add an override (validated; a named policy must exist); one of the same name is
    /// replaced and returned. Kept with the state and applied by every engine on the store.
    pub fn add_override(&self, o: Override, now_ms: Option<u64>) -> Result<Option<Override>> {
        let now = now_ms.unwrap_or_else(time::now_ms);
        o.validate(now)?;
        self.operate(None, |e| {
            let mut replaced = None;
            e.update_settings(|s| {
                if let Some(name) = &o.policy {
                    if s.policies.get(name).is_none() {
                        return Err(Error::invalid("policy", format!("no policy named {name:?}")));
                    }
                }
                s.overrides.purge(now);
                replaced = s.overrides.upsert(o.clone());
                Ok(())
            })?;
            let what = format!(
                "override {:?} {} for {}",
                o.name,
                if replaced.is_some() { "replaced" } else { "added" },
                o.scope()
            );
            Ok((replaced, what))
        })
    }

    /// Remove an override by name and return it.
    pub fn remove_override(&self, name: &str) -> Result<Override> {
        self.operate(None, |e| {
            let mut removed = None;
            e.update_settings(|s| {
                removed = Some(s.overrides.remove(name)?);
                Ok(())
            })?;
            let removed = removed.ok_or_else(|| Error::NotFound { what: format!("override {name:?}") })?;
            Ok((removed, format!("override {name:?} removed")))
        })
    }

    /// The health of `job_type`'s downstream: its score, the factor rules-tier delays
    /// get, the engine's own view and the last signals a caller sent.
    pub fn health(&self, job_type: &str, now_ms: Option<u64>) -> Result<HealthReport> {
        Features::new(job_type, 1).validate()?;
        let now = now_ms.unwrap_or_else(time::now_ms);
        let s = self.settings();
        let (view, signals, signals_at_ms) = self.guard().health_view(job_type, now);
        let cfg = &s.strategy.health;
        let context = s.contexts.get(job_type);
        let adaptation = context.and_then(|c| c.context.adaptation_factor).unwrap_or(cfg.adaptation_factor);
        let on = cfg.enabled && context.is_none_or(|c| c.health_aware());
        let score = health::score(signals, view, cfg);
        Ok(HealthReport {
            job_type: job_type.to_string(),
            score: score.map(|s| round3(s.value)),
            delay_factor: score.filter(|_| on).map_or(1.0, |s| round3(health::factor(&s, adaptation))),
            success_rate: view.success_rate.map(round3),
            requests: view.requests,
            breaker_state: view.breaker,
            signals,
            signals_at_ms,
        })
    }
}

/// `max_attempts 10 → 4, max_delay_ms 300000 → 60000` (or `unchanged`).
fn changed_fields(before: &Guardrails, after: &Guardrails) -> String {
    let (serde_json::Value::Object(a), serde_json::Value::Object(b)) =
        (serde_json::to_value(before).unwrap_or_default(), serde_json::to_value(after).unwrap_or_default())
    else {
        return "replaced".into();
    };
    let changes: Vec<String> = b
        .iter()
        .filter(|(k, v)| a.get(*k) != Some(v))
        .map(|(k, v)| format!("{k} {} → {v}", a.get(k).unwrap_or(&serde_json::Value::Null)))
        .collect();
    if changes.is_empty() {
        "unchanged".into()
    } else {
        changes.join(", ")
    }
}
