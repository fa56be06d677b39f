//! The cache of matched policies: the config's `cache` section (`enabled`, `ttl`,
//! `max_entries`). Which policy governs a failure depends only on its job type, HTTP
//! status, error class and code and its classified kind, and working it out walks every
//! policy's patterns (a tenth of a rules-tier decision with the default four, more with
//! regular expressions). So it is worked out once per such subject and kept: the least
//! recently used subjects go past `max_entries`, an entry older than `ttl` is matched
//! again, and the whole cache goes with the settings snapshot when an operator changes
//! anything (a changed policy is never served from it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use lru::LruCache;

use crate::classify::ErrorKind;
use crate::config::CacheConfig;
use crate::policy::{PolicySet, Subject};
use crate::time::parse_duration_ms;

/// Hits and misses, kept across settings snapshots.
#[derive(Debug, Default)]
pub(crate) struct CacheCounts {
    pub(crate) hits: AtomicU64,
    pub(crate) misses: AtomicU64,
}

/// One subject's matched policy, with the subject itself (the key is its hash).
struct Entry {
    job_type: Box<str>,
    error_class: Option<Box<str>>,
    error_code: Option<Box<str>>,
    http_status: Option<u16>,
    kind: ErrorKind,
    slot: u32,
    at_ms: u64,
}

impl Entry {
    fn is(&self, s: &Subject<'_>) -> bool {
        *self.job_type == *s.job_type
            && self.error_class.as_deref() == s.error_class
            && self.error_code.as_deref() == s.error_code
            && self.http_status == s.http_status
            && self.kind == s.kind
    }
}

pub(crate) struct PolicyCache {
    entries: Option<Mutex<LruCache<u64, Entry>>>,
    max_entries: usize,
    ttl_ms: u64,
    counts: Arc<CacheCounts>,
}

impl PolicyCache {
    pub(crate) fn new(c: &CacheConfig, counts: Arc<CacheCounts>) -> PolicyCache {
        let max_entries = c.max_entries;
        PolicyCache {
            entries: (c.enabled && max_entries > 0).then(|| Mutex::new(LruCache::unbounded())),
            max_entries,
            // Validated with the config; a value that does not parse keeps nothing.
            ttl_ms: parse_duration_ms(&c.ttl).unwrap_or(0),
            counts,
        }
    }

    /// An empty cache with the same settings (for a new settings snapshot).
    pub(crate) fn emptied(&self) -> PolicyCache {
        PolicyCache {
            entries: self.entries.as_ref().map(|_| Mutex::new(LruCache::unbounded())),
            max_entries: self.max_entries,
            ttl_ms: self.ttl_ms,
            counts: Arc::clone(&self.counts),
        }
    }

    pub(crate) fn hits(&self) -> u64 {
        self.counts.hits.load(Ordering::Relaxed)
    }

    pub(crate) fn misses(&self) -> u64 {
        self.counts.misses.load(Ordering::Relaxed)
    }

    /// The slot of the policy matching `s` ([`PolicySet::matching_slot`]); `count`: a live
    /// decision (a preview changes no figure).
    #[inline]
    pub(crate) fn slot(&self, policies: &PolicySet, s: &Subject<'_>, now: u64, count: bool) -> usize {
        let Some(entries) = &self.entries else { return policies.matching_slot(s) };
        let key = subject_hash(s);
        {
            let mut map = entries.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(e) = map.get(&key) {
                if e.is(s) && now.saturating_sub(e.at_ms) < self.ttl_ms {
                    if count {
                        self.counts.hits.fetch_add(1, Ordering::Relaxed);
                    }
                    return e.slot as usize;
                }
            }
        }
        if count {
            self.counts.misses.fetch_add(1, Ordering::Relaxed);
        }
        let slot = policies.matching_slot(s);
        let entry = Entry {
            job_type: s.job_type.into(),
            error_class: s.error_class.map(Into::into),
            error_code: s.error_code.map(Into::into),
            http_status: s.http_status,
            kind: s.kind,
            slot: u32::try_from(slot).unwrap_or(u32::MAX),
            at_ms: now,
        };
        let mut map = entries.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.max_entries && !map.contains(&key) {
            map.pop_lru();
        }
        map.put(key, entry);
        slot
    }
}

/// FNV-1a over the subject's fields (a collision costs a miss, never a wrong policy:
/// a hit is checked against the subject itself).
fn subject_hash(s: &Subject<'_>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        h = (h ^ 0xff).wrapping_mul(0x0100_0000_01b3);
    };
    eat(s.job_type.as_bytes());
    eat(s.error_class.unwrap_or("").as_bytes());
    eat(s.error_code.unwrap_or("").as_bytes());
    eat(&s.http_status.unwrap_or(0).to_le_bytes());
    eat(s.kind.as_str().as_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;

    fn subject<'a>(job_type: &'a str, status: Option<u16>, class: Option<&'a str>) -> Subject<'a> {
        let kind = crate::classify::classify(status, class, None);
        Subject { job_type, error_class: class, error_code: None, http_status: status, kind }
    }

    #[test]
    fn the_cache_answers_what_matching_answers() {
        let custom = Policy {
            error_patterns: vec!["5\\d\\d".into()],
            job_type_patterns: vec!["pay.*".into()],
            priority: 200,
            ..Policy::new("payments_5xx", 4, 500, 10_000)
        };
        let mut all = Policy::defaults();
        all.push(custom);
        let policies = PolicySet::new(all).unwrap();
        let counts = Arc::new(CacheCounts::default());
        let cache =
            PolicyCache::new(&CacheConfig { max_entries: 8, ..CacheConfig::default() }, Arc::clone(&counts));
        let jobs = ["payment", "email", "pay_out", "sync"];
        let statuses = [None, Some(400), Some(429), Some(500), Some(503)];
        let classes = [None, Some("timeout"), Some("rate_limit")];
        for round in 0..3 {
            for job in jobs {
                for status in statuses {
                    for class in classes {
                        let s = subject(job, status, class);
                        let want = policies.matching(&s).name.clone();
                        let got = policies.at(cache.slot(&policies, &s, 1_000 + round, true)).name.clone();
                        assert_eq!(got, want, "{job} {status:?} {class:?}");
                    }
                }
            }
        }
        // 60 subjects through 8 entries: mostly misses, never a wrong answer.
        assert!(counts.misses.load(Ordering::Relaxed) > 0);
        let s = subject("payment", Some(503), None);
        let before = counts.hits.load(Ordering::Relaxed);
        cache.slot(&policies, &s, 2_000, true);
        cache.slot(&policies, &s, 2_001, true);
        assert_eq!(counts.hits.load(Ordering::Relaxed), before + 1, "the second is a hit");
        // Past the ttl (5 minutes by default) it is matched again.
        let misses = counts.misses.load(Ordering::Relaxed);
        cache.slot(&policies, &s, 2_000 + 300_000, true);
        assert_eq!(counts.misses.load(Ordering::Relaxed), misses + 1);
    }

    #[test]
    fn a_disabled_cache_keeps_nothing() {
        let policies = PolicySet::default();
        let counts = Arc::new(CacheCounts::default());
        let cache =
            PolicyCache::new(&CacheConfig { enabled: false, ..CacheConfig::default() }, Arc::clone(&counts));
        let s = subject("x", Some(503), None);
        assert_eq!(policies.at(cache.slot(&policies, &s, 0, true)).name, "service_unavailable");
        assert_eq!(counts.hits.load(Ordering::Relaxed) + counts.misses.load(Ordering::Relaxed), 0);
    }
}
