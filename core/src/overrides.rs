//! Operator overrides: "cap or override strategies per queue/tenant", and the TUI's
//! manual delay for one job (Ctrl+O).
//!
//! An override has a scope (any of `queue`, `tenant`, `job_type`, `job_id`; none =
//! global) and sets some of: `max_attempts`, `min_delay_ms`, `max_delay_ms`,
//! `deadline_ms`, `policy` (a named policy instead of the matched one), `delay_ms` (a
//! fixed delay) and `retries_disabled`. For each field, the most specific matching
//! override that sets it wins: global → queue → tenant → job_type → job id (an override
//! naming several scope fields ranks by its most specific one, then by how many it
//! names; equal ones by name). The engine-wide guardrails still bound everything.
//! An override may expire (`expires_at_ms`); expired ones are ignored and dropped.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::api::{Features, MAX_LABEL_LEN};
use crate::error::{Error, Result};
use crate::say::Ms;

const DAY_MS: u64 = 86_400_000;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    /// Attempts in total (the first included), instead of the policy's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_delay_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delay_ms: Option<u64>,
    /// Total time from the first failure after which no retry starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// A policy (by name) to use instead of the one the failure matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// A fixed delay instead of any tier's (the manual override of a job's delay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// `true`: nothing in the scope is retried; `false` re-enables a broader scope's stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries_disabled: Option<bool>,
    /// Unix ms after which the override no longer applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
    /// Why the operator set it (shown in listings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Override {
    /// Checks every field; `now` rejects an override that has already expired.
    pub fn validate(&self, now: u64) -> Result<()> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 128
            && self.name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.:".contains(c));
        if !name_ok {
            return Err(Error::invalid("name", "1–128 characters of letters, digits, '_', '-', '.' or ':'"));
        }
        for (field, value) in [
            ("queue", &self.queue),
            ("tenant", &self.tenant),
            ("job_type", &self.job_type),
            ("job_id", &self.job_id),
            ("policy", &self.policy),
            ("reason", &self.reason),
        ] {
            if let Some(v) = value {
                if v.trim().is_empty() || v.len() > MAX_LABEL_LEN {
                    return Err(Error::invalid(field, format!("must be 1–{MAX_LABEL_LEN} bytes")));
                }
            }
        }
        if let Some(n) = self.max_attempts {
            if !(1..=100).contains(&n) {
                return Err(Error::invalid("max_attempts", format!("must be 1–100, got {n}")));
            }
        }
        for (field, value) in [
            ("min_delay_ms", self.min_delay_ms),
            ("max_delay_ms", self.max_delay_ms),
            ("delay_ms", self.delay_ms),
        ] {
            if value.is_some_and(|v| v > DAY_MS) {
                return Err(Error::invalid(field, "must be at most 24 h (86400000)"));
            }
        }
        if let (Some(lo), Some(hi)) = (self.min_delay_ms, self.max_delay_ms) {
            if lo > hi {
                return Err(Error::invalid("min_delay_ms", format!("must be ≤ max_delay_ms ({hi})")));
            }
        }
        if self.deadline_ms.is_some_and(|d| d == 0 || d > 30 * DAY_MS) {
            return Err(Error::invalid("deadline_ms", "must be 1 ms – 30 days"));
        }
        if self.expires_at_ms.is_some_and(|t| t <= now) {
            return Err(Error::invalid("expires_at_ms", "is already in the past"));
        }
        let acts = self.max_attempts.is_some()
            || self.min_delay_ms.is_some()
            || self.max_delay_ms.is_some()
            || self.deadline_ms.is_some()
            || self.policy.is_some()
            || self.delay_ms.is_some()
            || self.retries_disabled.is_some();
        if !acts {
            return Err(Error::invalid(
                "override",
                "sets nothing: give max_attempts, min_delay_ms, max_delay_ms, deadline_ms, policy, delay_ms or retries_disabled",
            ));
        }
        Ok(())
    }

    /// (most specific scope field, number of scope fields): higher = more specific.
    fn rank(&self) -> (u8, u8) {
        let fields = [&self.queue, &self.tenant, &self.job_type, &self.job_id];
        let top = fields.iter().rposition(|f| f.is_some()).map_or(0, |i| i as u8 + 1);
        (top, fields.iter().filter(|f| f.is_some()).count() as u8)
    }

    fn applies(&self, f: &Features, now: u64) -> bool {
        let same = |want: &Option<String>, have: &Option<String>| want.is_none() || want == have;
        self.expires_at_ms.is_none_or(|t| now < t)
            && same(&self.queue, &f.queue)
            && same(&self.tenant, &f.tenant)
            && self.job_type.as_ref().is_none_or(|j| *j == f.job_type)
            && same(&self.job_id, &f.job_id)
    }

    /// "queue=payments tenant=acme" (or "global").
    pub fn scope(&self) -> String {
        let mut out = String::new();
        for (k, v) in [
            ("queue", &self.queue),
            ("tenant", &self.tenant),
            ("job_type", &self.job_type),
            ("job_id", &self.job_id),
        ] {
            if let Some(v) = v {
                if !out.is_empty() {
                    out.push(' ');
                }
                let _ = write!(out, "{k}={v}");
            }
        }
        if out.is_empty() {
            out.push_str("global");
        }
        out
    }
}

/// The overrides in force, least specific first (so later ones win field by field).
#[derive(Debug, Clone, Default)]
pub struct OverrideSet {
    list: Vec<Override>,
}

/// What the overrides say for one failure; each value with the override it came from.
#[derive(Debug, Default)]
pub struct OverridesInForce<'a> {
    pub max_attempts: Option<(u32, &'a Override)>,
    pub min_delay_ms: Option<(u64, &'a Override)>,
    pub max_delay_ms: Option<(u64, &'a Override)>,
    pub deadline_ms: Option<(u64, &'a Override)>,
    pub policy: Option<(&'a str, &'a Override)>,
    pub delay_ms: Option<(u64, &'a Override)>,
    pub retries_disabled: Option<(bool, &'a Override)>,
}

impl OverrideSet {
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Adds `o`, replacing (and returning) one of the same name.
    pub fn upsert(&mut self, o: Override) -> Option<Override> {
        let old = self.list.iter().position(|x| x.name == o.name).map(|i| self.list.remove(i));
        self.list.push(o);
        self.list.sort_by(|a, b| a.rank().cmp(&b.rank()).then_with(|| b.name.cmp(&a.name)));
        old
    }

    pub fn remove(&mut self, name: &str) -> Result<Override> {
        let i = self
            .list
            .iter()
            .position(|o| o.name == name)
            .ok_or_else(|| Error::NotFound { what: format!("override {name:?}") })?;
        Ok(self.list.remove(i))
    }

    /// Drops overrides that expired by `now`; whether any did.
    pub fn purge(&mut self, now: u64) -> bool {
        let before = self.list.len();
        self.list.retain(|o| o.expires_at_ms.is_none_or(|t| now < t));
        self.list.len() != before
    }

    /// Most specific first, as operators read them.
    pub fn list(&self) -> Vec<Override> {
        self.list.iter().rev().cloned().collect()
    }

    pub fn resolve(&self, f: &Features, now: u64) -> OverridesInForce<'_> {
        let mut r = OverridesInForce::default();
        fn set<'a, T>(slot: &mut Option<(T, &'a Override)>, v: Option<T>, o: &'a Override) {
            if let Some(v) = v {
                *slot = Some((v, o));
            }
        }
        for o in self.list.iter().filter(|o| o.applies(f, now)) {
            set(&mut r.max_attempts, o.max_attempts, o);
            set(&mut r.min_delay_ms, o.min_delay_ms, o);
            set(&mut r.max_delay_ms, o.max_delay_ms, o);
            set(&mut r.deadline_ms, o.deadline_ms, o);
            set(&mut r.policy, o.policy.as_deref(), o);
            set(&mut r.delay_ms, o.delay_ms, o);
            set(&mut r.retries_disabled, o.retries_disabled, o);
        }
        r
    }
}

impl OverridesInForce<'_> {
    pub fn is_empty(&self) -> bool {
        self.max_attempts.is_none()
            && self.min_delay_ms.is_none()
            && self.max_delay_ms.is_none()
            && self.deadline_ms.is_none()
            && self.policy.is_none()
            && self.delay_ms.is_none()
            && self.retries_disabled.is_none()
    }

    /// `; override "vip" (tenant=acme): max attempts 6, delay 5s` — one clause per
    /// override that set something, in the rationale's voice.
    pub fn describe(&self, out: &mut String) {
        let mut seen: Vec<&Override> = Vec::new();
        let fields: [(Option<&Override>, String); 7] = [
            (self.retries_disabled.map(|(_, o)| o), describe_disabled(self.retries_disabled)),
            (
                self.policy.map(|(_, o)| o),
                self.policy.map(|(p, _)| format!("policy {p}")).unwrap_or_default(),
            ),
            (
                self.max_attempts.map(|(_, o)| o),
                self.max_attempts.map(|(n, _)| format!("max attempts {n}")).unwrap_or_default(),
            ),
            (
                self.delay_ms.map(|(_, o)| o),
                self.delay_ms.map(|(d, _)| format!("delay {}", Ms(d))).unwrap_or_default(),
            ),
            (
                self.min_delay_ms.map(|(_, o)| o),
                self.min_delay_ms.map(|(d, _)| format!("min delay {}", Ms(d))).unwrap_or_default(),
            ),
            (
                self.max_delay_ms.map(|(_, o)| o),
                self.max_delay_ms.map(|(d, _)| format!("max delay {}", Ms(d))).unwrap_or_default(),
            ),
            (
                self.deadline_ms.map(|(_, o)| o),
                self.deadline_ms.map(|(d, _)| format!("deadline {}", Ms(d))).unwrap_or_default(),
            ),
        ];
        for (o, _) in &fields {
            if let Some(o) = o {
                if !seen.iter().any(|s| std::ptr::eq(*s, *o)) {
                    seen.push(o);
                }
            }
        }
        for o in seen {
            let _ = write!(out, "; override {:?} ({}):", o.name, o.scope());
            let mut first = true;
            for (owner, text) in &fields {
                if owner.is_some_and(|x| std::ptr::eq(x, o)) {
                    out.push_str(if first { " " } else { ", " });
                    out.push_str(text);
                    first = false;
                }
            }
        }
    }
}

fn describe_disabled(v: Option<(bool, &Override)>) -> String {
    match v {
        Some((true, _)) => "retries disabled".into(),
        Some((false, _)) => "retries enabled".into(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(name: &str) -> Override {
        Override { name: name.into(), ..Default::default() }
    }

    #[test]
    fn the_most_specific_scope_wins_field_by_field() {
        let mut set = OverrideSet::default();
        set.upsert(Override { max_attempts: Some(2), max_delay_ms: Some(10_000), ..o("everyone") });
        set.upsert(Override { queue: Some("payments".into()), max_attempts: Some(4), ..o("payments") });
        set.upsert(Override { tenant: Some("acme".into()), max_attempts: Some(6), ..o("acme") });
        set.upsert(Override { job_type: Some("capture".into()), max_attempts: Some(3), ..o("capture") });
        set.upsert(Override { job_id: Some("j-1".into()), delay_ms: Some(5_000), ..o("job") });
        let f = Features::new("refund", 1).with_queue("payments");
        let r = set.resolve(&f, 0);
        assert_eq!(r.max_attempts.map(|(n, o)| (n, o.name.as_str())), Some((4, "payments")));
        assert_eq!(
            r.max_delay_ms.map(|(d, _)| d),
            Some(10_000),
            "the global one still sets what nobody else does"
        );
        let r = set.resolve(&f.clone().with_tenant("acme"), 0);
        assert_eq!(r.max_attempts.map(|(n, _)| n), Some(6), "tenant beats queue");
        let mut f = f.with_tenant("acme");
        f.job_type = "capture".into();
        assert_eq!(set.resolve(&f, 0).max_attempts.map(|(n, _)| n), Some(3), "job type beats tenant");
        let f = f.with_job_id("j-1");
        let r = set.resolve(&f, 0);
        assert_eq!(r.delay_ms.map(|(d, _)| d), Some(5_000));
        let mut text = String::new();
        r.describe(&mut text);
        assert!(text.contains(r#"override "job" (job_id=j-1): delay 5s"#), "{text}");
        assert!(text.contains(r#"override "capture" (job_type=capture): max attempts 3"#), "{text}");
    }

    #[test]
    fn expired_overrides_are_ignored_and_purged() {
        let mut set = OverrideSet::default();
        set.upsert(Override { retries_disabled: Some(true), expires_at_ms: Some(1_000), ..o("pause") });
        assert!(set.resolve(&Features::new("a", 1), 999).retries_disabled.is_some());
        assert!(set.resolve(&Features::new("a", 1), 1_000).is_empty());
        assert!(set.purge(1_000));
        assert!(set.is_empty());
    }

    #[test]
    fn invalid_overrides_name_the_field() {
        let bad = |x: Override| x.validate(10).unwrap_err().field().map(str::to_string);
        assert_eq!(bad(o("x")).as_deref(), Some("override"));
        assert_eq!(bad(Override { max_attempts: Some(0), ..o("x") }).as_deref(), Some("max_attempts"));
        assert_eq!(
            bad(Override { min_delay_ms: Some(5), max_delay_ms: Some(1), ..o("x") }).as_deref(),
            Some("min_delay_ms")
        );
        assert_eq!(bad(Override { delay_ms: Some(1), ..o("bad name!") }).as_deref(), Some("name"));
        assert_eq!(
            bad(Override { delay_ms: Some(1), expires_at_ms: Some(5), ..o("x") }).as_deref(),
            Some("expires_at_ms")
        );
        assert_eq!(
            bad(Override { delay_ms: Some(1), queue: Some(" ".into()), ..o("x") }).as_deref(),
            Some("queue")
        );
        let err = crate::api::from_json::<Override>(r#"{"name":"x","max_atempts":3}"#).unwrap_err();
        assert_eq!(err.kind(), "invalid_input");
        assert!(err.to_string().contains("max_atempts"), "{err}");
    }

    #[test]
    fn upsert_replaces_by_name() {
        let mut set = OverrideSet::default();
        assert!(set.upsert(Override { delay_ms: Some(1), ..o("x") }).is_none());
        assert_eq!(set.upsert(Override { delay_ms: Some(2), ..o("x") }).and_then(|o| o.delay_ms), Some(1));
        assert_eq!(set.list().len(), 1);
        assert!(matches!(set.remove("y"), Err(Error::NotFound { .. })));
    }
}
