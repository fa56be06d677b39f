//! Rules tier: named policies matched by error and job-type patterns. The highest
//! priority wins; ties go to the alphabetically first name so the choice never depends
//! on insertion order.

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::backoff::{Backoff, BackoffStrategy, Jitter};
use crate::classify::ErrorKind;
use crate::error::{Error, Result};

/// A retry policy in the API document's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    pub name: String,
    /// Matched (case-insensitively, whole string) against the error class, the error
    /// code, the HTTP status and the classified kind (`timeout`, `rate_limit`…).
    /// Plain words compare as text; anything else is a regular expression. Empty = all.
    #[serde(default)]
    pub error_patterns: Vec<String>,
    /// Regular expressions over the job type (whole string). Empty = all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub job_type_patterns: Vec<String>,
    /// Attempts in total, the first included; 1 means "never retry".
    pub max_attempts: u32,
    #[serde(default)]
    pub base_delay_ms: u64,
    #[serde(default)]
    pub max_delay_ms: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub min_delay_ms: u64,
    #[serde(default = "default_multiplier")]
    pub backoff_multiplier: f64,
    #[serde(default)]
    pub jitter_percent: f64,
    #[serde(default)]
    pub priority: i32,
    /// Backoff shape; absent = the decision matrix's choice for the error kind
    /// (429 aggressive, timeouts linear, the rest exponential).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<BackoffStrategy>,
    /// Jitter mode; absent = ±`jitter_percent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<Jitter>,
    /// The deadline of the jobs it governs, from their first failure, unless the call
    /// names one; absent = the guardrails' `default_deadline_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
}

fn default_multiplier() -> f64 {
    2.0
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl Policy {
    /// A policy that retries with exponential backoff; refine with struct update syntax.
    pub fn new(name: impl Into<String>, max_attempts: u32, base_delay_ms: u64, max_delay_ms: u64) -> Self {
        Policy {
            name: name.into(),
            error_patterns: Vec::new(),
            job_type_patterns: Vec::new(),
            max_attempts,
            base_delay_ms,
            max_delay_ms,
            min_delay_ms: 0,
            backoff_multiplier: 2.0,
            jitter_percent: 0.0,
            priority: 0,
            strategy: None,
            jitter: None,
            deadline_ms: None,
        }
    }

    /// The four policies of the API document, with as many attempts as the static
    /// schedules users would otherwise pick (2-4-8-16-32: six attempts): the learned
    /// delays keep the retries spent low, and a job ends by its deadline, not by a count
    /// that gives up on jobs such a schedule recovers.
    pub fn defaults() -> Vec<Policy> {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        vec![
            Policy {
                error_patterns: words(&["400", "validation", "invalid_input"]),
                priority: 150,
                ..Policy::new("validation", 1, 0, 0)
            },
            Policy {
                error_patterns: words(&["429", "rate_limit", "too_many_requests"]),
                jitter_percent: 25.0,
                priority: 100,
                ..Policy::new("rate_limit", 6, 5_000, 60_000)
            },
            Policy {
                error_patterns: words(&["503", "service_unavailable", "timeout"]),
                jitter_percent: 20.0,
                priority: 90,
                ..Policy::new("service_unavailable", 6, 2_000, 30_000)
            },
            Policy { jitter_percent: 15.0, ..Policy::new("fallback", 6, 1_000, 30_000) },
        ]
    }

    pub fn validate(&self) -> Result<()> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 128
            && self.name.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
        if !name_ok {
            return Err(Error::invalid("name", "1–128 characters of letters, digits, '_', '-' or '.'"));
        }
        if self.max_attempts == 0 || self.max_attempts > 100 {
            return Err(Error::invalid("max_attempts", format!("must be 1–100, got {}", self.max_attempts)));
        }
        if self.max_attempts > 1 && self.max_delay_ms < self.base_delay_ms {
            return Err(Error::invalid(
                "max_delay_ms",
                format!("must be ≥ base_delay_ms ({})", self.base_delay_ms),
            ));
        }
        if self.min_delay_ms > self.max_delay_ms.max(self.base_delay_ms) {
            return Err(Error::invalid("min_delay_ms", "must be ≤ max_delay_ms"));
        }
        if self.deadline_ms.is_some_and(|d| !(1_000..=7 * 86_400_000).contains(&d)) {
            return Err(Error::invalid("deadline_ms", "must be 1 s – 7 days when set"));
        }
        if !self.backoff_multiplier.is_finite()
            || self.backoff_multiplier < 1.0
            || self.backoff_multiplier > 100.0
        {
            return Err(Error::invalid("backoff_multiplier", "must be a number from 1 to 100"));
        }
        if !(0.0..=100.0).contains(&self.jitter_percent) {
            return Err(Error::invalid("jitter_percent", "must be 0–100"));
        }
        for (i, p) in self.error_patterns.iter().enumerate() {
            Matcher::new(p).map_err(|r| Error::invalid(format!("error_patterns[{i}]"), r))?;
        }
        for (i, p) in self.job_type_patterns.iter().enumerate() {
            Matcher::new(p).map_err(|r| Error::invalid(format!("job_type_patterns[{i}]"), r))?;
        }
        self.backoff(ErrorKind::Unknown).validate()
    }

    /// Whether this policy allows any retry at all.
    pub fn retries(&self) -> bool {
        self.max_attempts > 1
    }

    /// The backoff this policy applies to a failure of `kind`.
    pub fn backoff(&self, kind: ErrorKind) -> Backoff {
        let jitter = self.jitter.unwrap_or(if self.jitter_percent > 0.0 {
            Jitter::Percent(self.jitter_percent)
        } else {
            Jitter::None
        });
        Backoff::new(self.strategy.unwrap_or_else(|| kind.strategy()), self.base_delay_ms)
            .with_multiplier(self.backoff_multiplier)
            .with_bounds(self.min_delay_ms, self.max_delay_ms.max(self.min_delay_ms))
            .with_jitter(jitter)
    }
}

/// A pattern: plain words compare without a regex engine (the common, fast case).
#[derive(Debug, Clone)]
enum Matcher {
    Word(String),
    Regex(Regex),
}

impl Matcher {
    fn new(pattern: &str) -> std::result::Result<Matcher, String> {
        if pattern.is_empty() || pattern.len() > 512 {
            return Err("must be 1–512 characters".into());
        }
        if pattern.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Ok(Matcher::Word(pattern.to_ascii_lowercase()));
        }
        Regex::new(&format!("(?i)^(?:{pattern})$"))
            .map(Matcher::Regex)
            .map_err(|e| format!("not a valid regular expression: {e}"))
    }

    fn matches(&self, text: &str) -> bool {
        match self {
            Matcher::Word(w) => w.eq_ignore_ascii_case(text),
            Matcher::Regex(r) => r.is_match(text),
        }
    }
}

#[derive(Debug, Clone)]
struct Compiled {
    policy: Policy,
    errors: Vec<Matcher>,
    jobs: Vec<Matcher>,
}

/// What a failure looks like to pattern matching.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub job_type: &'a str,
    pub error_class: Option<&'a str>,
    pub error_code: Option<&'a str>,
    pub http_status: Option<u16>,
    pub kind: ErrorKind,
}

/// The policies in force, sorted by (priority desc, name asc).
#[derive(Debug, Clone)]
pub struct PolicySet {
    compiled: Vec<Compiled>,
    fallback: Policy,
}

impl Default for PolicySet {
    fn default() -> Self {
        PolicySet::new(Policy::defaults()).unwrap_or_else(|_| PolicySet::empty())
    }
}

impl PolicySet {
    fn empty() -> Self {
        let fallback = Policy::defaults().pop().unwrap_or_else(|| Policy::new("fallback", 6, 1_000, 30_000));
        PolicySet { compiled: Vec::new(), fallback }
    }

    /// Validates every policy; names must be unique.
    pub fn new(policies: Vec<Policy>) -> Result<Self> {
        let mut set = PolicySet::empty();
        for (i, p) in policies.into_iter().enumerate() {
            set.add(p).map_err(|e| e.within(&format!("policies[{i}]")))?;
        }
        Ok(set)
    }

    pub fn add(&mut self, policy: Policy) -> Result<()> {
        policy.validate()?;
        if self.compiled.iter().any(|c| c.policy.name == policy.name) {
            return Err(Error::invalid("name", format!("a policy named {:?} already exists", policy.name)));
        }
        let compile =
            |ps: &[String]| ps.iter().map(|p| Matcher::new(p)).collect::<std::result::Result<Vec<_>, _>>();
        let errors = compile(&policy.error_patterns).map_err(|r| Error::invalid("error_patterns", r))?;
        let jobs = compile(&policy.job_type_patterns).map_err(|r| Error::invalid("job_type_patterns", r))?;
        self.compiled.push(Compiled { policy, errors, jobs });
        self.compiled.sort_by(|a, b| {
            b.policy.priority.cmp(&a.policy.priority).then_with(|| a.policy.name.cmp(&b.policy.name))
        });
        Ok(())
    }

    pub fn remove(&mut self, name: &str) -> Result<Policy> {
        let i = self
            .compiled
            .iter()
            .position(|c| c.policy.name == name)
            .ok_or_else(|| Error::NotFound { what: format!("policy {name:?}") })?;
        Ok(self.compiled.remove(i).policy)
    }

    /// The policy of this name (the built-in fallback included).
    pub fn get(&self, name: &str) -> Option<&Policy> {
        self.compiled
            .iter()
            .map(|c| &c.policy)
            .find(|p| p.name == name)
            .or_else(|| (self.fallback.name == name).then_some(&self.fallback))
    }

    /// Policies in matching order.
    pub fn list(&self) -> Vec<Policy> {
        self.compiled.iter().map(|c| c.policy.clone()).collect()
    }

    /// The first policy (by priority, then name) whose patterns match; the built-in
    /// fallback when none does.
    #[cfg(test)]
    pub fn matching(&self, s: &Subject<'_>) -> &Policy {
        self.at(self.matching_slot(s))
    }

    /// Where the policy [`PolicySet::matching`] returns sits: its place in matching
    /// order, or one past the last for the fallback (what a cache keeps).
    pub fn matching_slot(&self, s: &Subject<'_>) -> usize {
        let mut status_buf = [0u8; 3];
        let status = s.http_status.map(|code| status_text(code, &mut status_buf));
        let candidates = [s.error_class, s.error_code, status, Some(s.kind.as_str())];
        self.compiled
            .iter()
            .position(|c| {
                let job_ok = c.jobs.is_empty() || c.jobs.iter().any(|m| m.matches(s.job_type));
                let error_ok = c.errors.is_empty()
                    || c.errors.iter().any(|m| candidates.iter().flatten().any(|t| m.matches(t)));
                job_ok && error_ok
            })
            .unwrap_or(self.compiled.len())
    }

    /// The policy at `slot` ([`PolicySet::matching_slot`]); the fallback past the end.
    pub fn at(&self, slot: usize) -> &Policy {
        self.compiled.get(slot).map_or(&self.fallback, |c| &c.policy)
    }
}

/// A three-digit status as text without allocating.
fn status_text(code: u16, buf: &mut [u8; 3]) -> &str {
    let code = code.min(999);
    buf[0] = b'0' + (code / 100) as u8;
    buf[1] = b'0' + (code / 10 % 10) as u8;
    buf[2] = b'0' + (code % 10) as u8;
    std::str::from_utf8(buf).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(status: Option<u16>, class: Option<&'static str>) -> Subject<'static> {
        Subject {
            job_type: "email_send",
            error_class: class,
            error_code: None,
            http_status: status,
            kind: crate::classify::classify(status, class, None),
        }
    }

    #[test]
    fn default_policies_match_the_api_document() {
        let set = PolicySet::default();
        assert_eq!(set.matching(&subject(Some(429), None)).name, "rate_limit");
        assert_eq!(set.matching(&subject(None, Some("too_many_requests"))).name, "rate_limit");
        assert_eq!(set.matching(&subject(Some(503), None)).name, "service_unavailable");
        assert_eq!(set.matching(&subject(None, Some("timeout"))).name, "service_unavailable");
        // "TimeoutError" is classified as a timeout, which the policy names.
        assert_eq!(set.matching(&subject(None, Some("TimeoutError"))).name, "service_unavailable");
        assert_eq!(set.matching(&subject(Some(400), None)).name, "validation");
        assert_eq!(set.matching(&subject(None, Some("invalid_input"))).name, "validation");
        assert_eq!(set.matching(&subject(Some(500), None)).name, "fallback");
        let rl = set.matching(&subject(Some(429), None));
        assert_eq!((rl.max_attempts, rl.base_delay_ms, rl.max_delay_ms), (6, 5_000, 60_000));
        assert_eq!(rl.jitter_percent, 25.0);
    }

    #[test]
    fn highest_priority_wins_and_ties_break_by_name() {
        let mut set = PolicySet::default();
        let custom = Policy {
            error_patterns: vec!["timeout".into(), "connection_timeout".into()],
            job_type_patterns: vec!["critical_.*".into()],
            priority: 95,
            ..Policy::new("custom_timeout", 3, 2_000, 30_000)
        };
        set.add(custom).unwrap();
        let mut s = subject(None, Some("timeout"));
        assert_eq!(set.matching(&s).name, "service_unavailable");
        s.job_type = "critical_payment";
        assert_eq!(set.matching(&s).name, "custom_timeout");
        // A tie at the same priority: "a_tie" sorts before "custom_timeout".
        set.add(Policy {
            error_patterns: vec!["timeout".into()],
            priority: 95,
            ..Policy::new("a_tie", 2, 1, 10)
        })
        .unwrap();
        assert_eq!(set.matching(&s).name, "a_tie");
    }

    #[test]
    fn add_remove_list() {
        let mut set = PolicySet::default();
        assert_eq!(set.list().len(), 4);
        let err = set.add(Policy::new("fallback", 3, 1, 10)).unwrap_err();
        assert_eq!(err.field(), Some("name"));
        set.add(Policy::new("mine", 3, 1, 10)).unwrap();
        assert_eq!(set.remove("mine").unwrap().name, "mine");
        assert!(matches!(set.remove("mine"), Err(Error::NotFound { .. })));
    }

    #[test]
    fn invalid_policies_name_the_field() {
        let bad = |p: Policy| p.validate().unwrap_err().field().map(str::to_string);
        assert_eq!(bad(Policy::new("", 3, 1, 10)).as_deref(), Some("name"));
        assert_eq!(bad(Policy::new("x", 0, 1, 10)).as_deref(), Some("max_attempts"));
        assert_eq!(bad(Policy::new("x", 3, 100, 10)).as_deref(), Some("max_delay_ms"));
        assert_eq!(
            bad(Policy { backoff_multiplier: f64::NAN, ..Policy::new("x", 3, 1, 10) }).as_deref(),
            Some("backoff_multiplier")
        );
        assert_eq!(
            bad(Policy { error_patterns: vec!["(".into()], ..Policy::new("x", 3, 1, 10) }).as_deref(),
            Some("error_patterns[0]")
        );
        let err = PolicySet::new(vec![Policy::new("ok", 3, 1, 10), Policy::new("x", 0, 1, 10)]).unwrap_err();
        assert_eq!(err.field(), Some("policies[1].max_attempts"));
    }
}
