//! All learned keys, by (job type, error class, scope), sharded and capped.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use lru::LruCache;

use super::key::KeyModel;

pub(super) const SHARDS: usize = 16;

/// A narrower view of a key: everything, one tenant, or one hour of the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope<'a> {
    Key,
    Tenant(&'a str),
    Hour(u8),
    /// Failures that began while the downstream was degraded (the everyday ones are `Key`).
    Degraded,
}

impl<'a> Scope<'a> {
    fn hash_into(self, h: &mut impl Hasher) {
        match self {
            Scope::Key => h.write_u8(0),
            Scope::Tenant(t) => {
                h.write_u8(1);
                h.write(t.as_bytes());
            }
            Scope::Hour(hour) => {
                h.write_u8(2);
                h.write_u8(hour);
            }
            Scope::Degraded => h.write_u8(3),
        }
    }

    /// Whether a stored scope label is this scope (compared without allocating).
    fn is(self, stored: &str) -> bool {
        match self {
            Scope::Key => stored.is_empty(),
            Scope::Tenant(t) => stored.strip_prefix("tenant:") == Some(t),
            Scope::Hour(hour) => stored.strip_prefix("hour:").and_then(|h| h.parse().ok()) == Some(hour),
            Scope::Degraded => stored == "state:degraded",
        }
    }

    /// The scope a stored label names (the inverse of `Display`); `None` for an unknown label.
    pub fn parse(stored: &'a str) -> Option<Scope<'a>> {
        match stored {
            "" => Some(Scope::Key),
            "state:degraded" => Some(Scope::Degraded),
            _ => {
                if let Some(t) = stored.strip_prefix("tenant:") {
                    Some(Scope::Tenant(t))
                } else {
                    stored
                        .strip_prefix("hour:")
                        .and_then(|h| h.parse().ok())
                        .filter(|h| *h < 24)
                        .map(Scope::Hour)
                }
            }
        }
    }

    /// How a rationale names it: "", " for tenant acme", " for failures while …".
    pub fn describe(self) -> Described<'a> {
        Described(self)
    }
}

/// A scope as a rationale phrase, written without allocating.
pub struct Described<'a>(Scope<'a>);

impl crate::say::Say for Described<'_> {
    fn say(&self, out: &mut String) {
        match self.0 {
            Scope::Key => {}
            Scope::Tenant(t) => crate::say!(out, " for tenant ", t),
            Scope::Hour(h) => crate::say!(out, " for hour ", u32::from(h), " UTC"),
            Scope::Degraded => out.push_str(" for failures while the downstream is degraded"),
        }
    }
}

impl std::fmt::Display for Scope<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Key => Ok(()),
            Scope::Tenant(t) => write!(f, "tenant:{t}"),
            Scope::Hour(h) => write!(f, "hour:{h}"),
            Scope::Degraded => f.write_str("state:degraded"),
        }
    }
}

/// One learned key: the labels (kept to verify hash hits and to report) and its model.
#[derive(Debug, Clone)]
pub struct Entry {
    pub job_type: Box<str>,
    pub error_class: Box<str>,
    /// `""` for the key itself, `tenant:<t>` or `hour:<h>` for a narrower view of it.
    pub scope: Box<str>,
    pub model: KeyModel,
}

/// All learned keys, sharded to keep lock hold times short, each shard an LRU so the
/// number of keys is capped whatever labels callers send.
pub struct Learner {
    /// Grown on demand (an idle engine holds almost nothing), capped at `per_shard`.
    shards: Vec<Mutex<LruCache<u64, Entry>>>,
    per_shard: usize,
    /// Seeded per engine (foldhash: fast, and keyed so hostile labels cannot aim for collisions).
    hasher: foldhash::fast::RandomState,
    evictions: AtomicU64,
}

impl Learner {
    pub fn new(max_keys: usize) -> Self {
        Learner {
            shards: (0..SHARDS).map(|_| Mutex::new(LruCache::unbounded())).collect(),
            per_shard: max_keys.div_ceil(SHARDS).max(1),
            hasher: foldhash::fast::RandomState::default(),
            evictions: AtomicU64::new(0),
        }
    }

    pub(crate) fn key(&self, job_type: &str, error_class: &str, scope: Scope<'_>) -> u64 {
        let mut h = self.hasher.build_hasher();
        h.write(job_type.as_bytes());
        h.write_u8(0xff);
        h.write(error_class.as_bytes());
        scope.hash_into(&mut h);
        h.finish()
    }

    fn shard(&self, key: u64) -> std::sync::MutexGuard<'_, LruCache<u64, Entry>> {
        let m = &self.shards[(key as usize) % SHARDS];
        m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn is(e: &Entry, job_type: &str, error_class: &str, scope: Scope<'_>) -> bool {
        &*e.job_type == job_type && &*e.error_class == error_class && scope.is(&e.scope)
    }

    /// Read a key without creating it (deciding must not grow memory).
    pub fn with<R>(
        &self,
        job_type: &str,
        error_class: &str,
        scope: Scope<'_>,
        f: impl FnOnce(&KeyModel) -> R,
    ) -> Option<R> {
        let key = self.key(job_type, error_class, scope);
        let mut shard = self.shard(key);
        match shard.get(&key) {
            Some(e) if Self::is(e, job_type, error_class, scope) => Some(f(&e.model)),
            _ => None,
        }
    }

    /// Change an existing key; `None` when it is not learned.
    pub fn with_mut<R>(
        &self,
        job_type: &str,
        error_class: &str,
        scope: Scope<'_>,
        f: impl FnOnce(&mut KeyModel) -> R,
    ) -> Option<R> {
        let key = self.key(job_type, error_class, scope);
        let mut shard = self.shard(key);
        match shard.get_mut(&key) {
            Some(e) if Self::is(e, job_type, error_class, scope) => Some(f(&mut e.model)),
            _ => None,
        }
    }

    /// Update a key, creating it (and evicting the least recently used) as needed.
    pub fn update<R>(
        &self,
        job_type: &str,
        error_class: &str,
        scope: Scope<'_>,
        f: impl FnOnce(&mut KeyModel) -> R,
    ) -> R {
        let key = self.key(job_type, error_class, scope);
        let mut shard = self.shard(key);
        if let Some(e) = shard.get_mut(&key) {
            if Self::is(e, job_type, error_class, scope) {
                return f(&mut e.model);
            }
        }
        let mut entry = Entry {
            job_type: job_type.into(),
            error_class: error_class.into(),
            scope: scope.to_string().into(),
            model: KeyModel::default(),
        };
        let out = f(&mut entry.model);
        if shard.len() >= self.per_shard && !shard.contains(&key) {
            shard.pop_lru();
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
        shard.push(key, entry);
        out
    }

    /// One key's learning state as bytes (for a store to persist), read under its lock.
    pub fn encoded(&self, job_type: &str, error_class: &str, scope: Scope<'_>) -> Option<Vec<u8>> {
        self.with(job_type, error_class, scope, KeyModel::encode)
    }

    /// Put a key's learning state back (from a store), replacing what was there.
    pub fn restore(&self, job_type: &str, error_class: &str, scope: Scope<'_>, model: KeyModel) {
        self.update(job_type, error_class, scope, |m| *m = model);
    }

    pub fn evictions(&self) -> u64 {
        self.evictions.load(Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map(|g| g.len()).unwrap_or(0)).sum()
    }
}
