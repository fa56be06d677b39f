//! The schema of the SQLite store, one migration per version, and the row caps that
//! keep the file bounded whatever callers send.

use crate::error::{Error, Result};

/// The schema, one step per version; a file is brought up to the last one on open.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: attempt history, learned statistics, audit trail, breakers, settings.
    "CREATE TABLE outcomes (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        job_id TEXT NOT NULL,
        job_type TEXT NOT NULL,
        error_class TEXT NOT NULL,
        tenant TEXT,
        attempt_number INTEGER NOT NULL,
        delay_ms INTEGER NOT NULL,
        clock_ms INTEGER NOT NULL,
        success INTEGER NOT NULL,
        scopes TEXT NOT NULL DEFAULT '[]'
    );
    CREATE INDEX outcomes_at ON outcomes (at_ms);
    CREATE INDEX outcomes_key ON outcomes (job_type, error_class, at_ms);
    CREATE TABLE learned (
        job_type TEXT NOT NULL,
        error_class TEXT NOT NULL,
        scope TEXT NOT NULL,
        model BLOB NOT NULL,
        updated_ms INTEGER NOT NULL,
        PRIMARY KEY (job_type, error_class, scope)
    ) WITHOUT ROWID;
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        at_ms INTEGER NOT NULL,
        job_type TEXT NOT NULL,
        job_id TEXT,
        should_retry INTEGER NOT NULL,
        delay_ms INTEGER NOT NULL,
        method TEXT NOT NULL,
        features TEXT NOT NULL,
        decision TEXT NOT NULL
    );
    CREATE INDEX audit_at ON audit (at_ms);
    CREATE TABLE circuit_breaker_state (
        breaker_key TEXT PRIMARY KEY,
        state TEXT NOT NULL,
        open_until_ms INTEGER,
        failure_count INTEGER NOT NULL,
        success_count INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    );
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    // 2: the dead-letter queue (the entry as JSON; the columns people query, beside it).
    "CREATE TABLE dead_letters (
        id TEXT PRIMARY KEY,
        job_id TEXT NOT NULL,
        job_type TEXT NOT NULL,
        status TEXT NOT NULL,
        failure_reason TEXT NOT NULL,
        payload_ref TEXT,
        resolution_note TEXT,
        added_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL,
        entry TEXT NOT NULL
    );
    CREATE INDEX dead_letters_status ON dead_letters (status, added_ms);
    CREATE INDEX dead_letters_added ON dead_letters (added_ms);",
    // 3: the model registry.
    "CREATE TABLE models (
        version TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        sidecar TEXT NOT NULL,
        metrics TEXT NOT NULL,
        bytes BLOB,
        path TEXT,
        created_ms INTEGER NOT NULL,
        updated_ms INTEGER NOT NULL
    );",
    // 4: the oldest learned views and breaker states go first past the row caps.
    "CREATE INDEX learned_updated ON learned (updated_ms);
    CREATE INDEX circuit_breaker_state_updated ON circuit_breaker_state (updated_ms);",
    // 5: the operators' settings, versioned, and the list of their changes.
    "CREATE TABLE operator_settings (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        version INTEGER NOT NULL,
        doc TEXT NOT NULL
    );
    CREATE TABLE operator_changes (version INTEGER PRIMARY KEY, change TEXT NOT NULL);",
];

/// Most rows kept, by default (`?max_learned=`, `?max_breakers=`, `?max_outcomes=`,
/// `?max_audit=` in the URL): the engine's default `max_keys` for what is per key, about
/// 150 MB each for the history and the audit trail. Past a cap the oldest rows go, so a
/// flood of distinct labels cannot grow the file (or the next start's memory) without end.
pub const DEFAULT_MAX_LEARNED: u64 = 100_000;
pub const DEFAULT_MAX_OUTCOMES: u64 = 1_000_000;
pub const DEFAULT_MAX_AUDIT: u64 = 1_000_000;

/// The row caps of one store.
#[derive(Debug, Clone, Copy)]
pub(super) struct Caps {
    pub(super) learned: u64,
    pub(super) breakers: u64,
    pub(super) outcomes: u64,
    pub(super) audit: u64,
}

impl Caps {
    pub(super) fn from_params(params: &[(&str, &str)]) -> Result<Caps> {
        let cap = |name: &str, default: u64| match params.iter().find(|(k, _)| *k == name) {
            None => Ok(default),
            Some((_, v)) => match v.parse::<u64>() {
                Ok(n) if (1..=1_000_000_000).contains(&n) => Ok(n),
                _ => Err(Error::config(
                    format!("store.{name}"),
                    format!("expected a row count 1–1e9, got {v:?}"),
                )),
            },
        };
        Ok(Caps {
            learned: cap("max_learned", DEFAULT_MAX_LEARNED)?,
            breakers: cap("max_breakers", DEFAULT_MAX_LEARNED)?,
            outcomes: cap("max_outcomes", DEFAULT_MAX_OUTCOMES)?,
            audit: cap("max_audit", DEFAULT_MAX_AUDIT)?,
        })
    }

    pub(super) fn default() -> Caps {
        Caps {
            learned: DEFAULT_MAX_LEARNED,
            breakers: DEFAULT_MAX_LEARNED,
            outcomes: DEFAULT_MAX_OUTCOMES,
            audit: DEFAULT_MAX_AUDIT,
        }
    }
}

/// The schema version this build writes.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();
