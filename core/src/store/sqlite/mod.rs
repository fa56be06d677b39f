//! The embedded durable store: one SQLite file in WAL mode (readers never wait for the
//! writer), `synchronous = NORMAL` (a power cut loses at most the last batch, never the
//! file), versioned migrations recorded in `user_version` and `schema_migrations`.
//!
//! Every error names the file: a locked or corrupt database says which one.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};

use super::contract::{AuditRecord, Batch, LearnedRow, ModelRecord, OutcomeRecord, Restored, Store};
use crate::breaker::{BreakerSnapshot, BreakerState};
use crate::dlq::{DeadLetter, DeadLetterQuery, DeadLetterStatus};
use crate::error::{Error, Result};
use crate::time;

/// How long a statement waits for another connection's lock before failing.
pub const DEFAULT_BUSY_TIMEOUT_MS: u64 = 5_000;

mod schema;
mod settings;

pub use schema::SCHEMA_VERSION;
use schema::{Caps, MIGRATIONS};

pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
    caps: Caps,
    /// Learned and breaker rows upserted since they were last counted against their cap
    /// (a count is a scan: it is taken once per tenth of the cap written).
    unchecked: std::sync::atomic::AtomicU64,
}

/// SQLite wants signed integers; times and counts here are far below 2^63.
fn int(x: u64) -> i64 {
    x.min(i64::MAX as u64) as i64
}

fn uint(x: i64) -> u64 {
    x.max(0) as u64
}

impl SqliteStore {
    /// Delete the database at `path` with its WAL and shared-memory files (the ones that
    /// are absent are fine): a database in WAL mode is three files, not one.
    pub fn remove_database(path: &Path) -> std::io::Result<()> {
        for suffix in ["", "-wal", "-shm"] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            match std::fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }

    /// `sqlite:///abs/path.db` or `sqlite://relative.db`, with `?busy_timeout_ms=N`.
    pub fn open_url(url: &str) -> Result<SqliteStore> {
        let (base, params) = super::url::split_query(url);
        let path = base.strip_prefix("sqlite://").unwrap_or(base);
        if path.is_empty() {
            return Err(Error::config(
                "store",
                format!("{url:?} names no file: use sqlite:///path/to/file.db"),
            ));
        }
        let busy = super::url::query_ms(&params, "busy_timeout_ms", DEFAULT_BUSY_TIMEOUT_MS)?;
        let mut store = SqliteStore::open(path, Duration::from_millis(busy))?;
        store.caps = Caps::from_params(&params)?;
        store.trim().map_err(|e| store.fail(e))?;
        Ok(store)
    }

    /// Open (creating it if needed) and migrate the file at `path`.
    pub fn open(path: impl AsRef<Path>, busy_timeout: Duration) -> Result<SqliteStore> {
        let path = path.as_ref().to_path_buf();
        let fail = |e: rusqlite::Error| file_error(&path, e);
        let conn = Connection::open(&path).map_err(fail)?;
        conn.busy_timeout(busy_timeout).map_err(fail)?;
        // The first statement reads the header: a file that is not a database fails here.
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).map_err(fail)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Store(format!(
                "{}: could not switch to WAL mode (got {mode})",
                path.display()
            )));
        }
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY;").map_err(fail)?;
        let store = SqliteStore {
            path,
            conn: Mutex::new(conn),
            caps: Caps::default(),
            unchecked: Default::default(),
        };
        store.migrate()?;
        store.trim().map_err(|e| store.fail(e))?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fail(&self, e: rusqlite::Error) -> Error {
        file_error(&self.path, e)
    }

    fn migrate(&self) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| self.fail(e))?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| self.fail(e))?;
        let version = uint(version) as usize;
        if version > SCHEMA_VERSION {
            return Err(Error::Store(format!(
                "{}: schema version {version} was written by a newer smartretry (this one knows up to {SCHEMA_VERSION})",
                self.path.display()
            )));
        }
        if version < SCHEMA_VERSION {
            tx.execute_batch(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)",
            )
            .map_err(|e| self.fail(e))?;
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
                tx.execute_batch(sql).map_err(|e| self.fail(e))?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, applied_ms) VALUES (?1, ?2)",
                    params![i as i64 + 1, int(time::now_ms())],
                )
                .map_err(|e| self.fail(e))?;
            }
            tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}")).map_err(|e| self.fail(e))?;
        }
        tx.commit().map_err(|e| self.fail(e))
    }

    /// Hold the per-key tables to their caps (oldest updated first).
    fn trim(&self) -> rusqlite::Result<()> {
        let conn = self.conn();
        for (table, key, columns, cap) in [
            ("learned", "(job_type, error_class, scope)", "job_type, error_class, scope", self.caps.learned),
            ("circuit_breaker_state", "breaker_key", "breaker_key", self.caps.breakers),
        ] {
            let rows: i64 = conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
            let excess = uint(rows).saturating_sub(cap);
            if excess > 0 {
                conn.execute(
                    &format!(
                        "DELETE FROM {table} WHERE {key} IN (SELECT {columns} FROM {table} ORDER BY updated_ms LIMIT ?1)"
                    ),
                    [int(excess)],
                )?;
            }
        }
        self.unchecked.store(0, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// The schema version of the open file.
    pub fn schema_version(&self) -> Result<usize> {
        let v: i64 =
            self.conn().query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| self.fail(e))?;
        Ok(uint(v) as usize)
    }

    fn write_batch(&self, tx: &rusqlite::Transaction<'_>, batch: &Batch) -> rusqlite::Result<()> {
        if !batch.outcomes.is_empty() {
            let mut insert = tx.prepare_cached(
                "INSERT INTO outcomes (at_ms, job_id, job_type, error_class, tenant, attempt_number, delay_ms, clock_ms, success, scopes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            for o in &batch.outcomes {
                insert.execute(params![
                    int(o.at_ms),
                    o.job_id,
                    o.job_type,
                    o.error_class,
                    o.tenant,
                    o.attempt_number,
                    int(o.delay_ms),
                    int(o.clock_ms),
                    o.success,
                    json(&o.scopes)
                ])?;
            }
        }
        if !batch.audits.is_empty() {
            let mut insert = tx.prepare_cached(
                "INSERT INTO audit (at_ms, job_type, job_id, should_retry, delay_ms, method, features, decision)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for a in &batch.audits {
                insert.execute(params![
                    int(a.at_ms),
                    a.features.job_type,
                    a.features.job_id,
                    a.decision.should_retry,
                    int(a.decision.delay_ms),
                    a.decision.method.as_str(),
                    json(&a.features),
                    json(&a.decision)
                ])?;
            }
        }
        let now = int(time::now_ms());
        if !batch.learned.is_empty() {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO learned (job_type, error_class, scope, model, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (job_type, error_class, scope) DO UPDATE SET model = excluded.model, updated_ms = excluded.updated_ms",
            )?;
            for l in &batch.learned {
                upsert.execute(params![l.job_type, l.error_class, l.scope, l.model, now])?;
            }
        }
        if !batch.breakers.is_empty() {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO circuit_breaker_state (breaker_key, state, open_until_ms, failure_count, success_count, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (breaker_key) DO UPDATE SET state = excluded.state, open_until_ms = excluded.open_until_ms,
                   failure_count = excluded.failure_count, success_count = excluded.success_count, updated_ms = excluded.updated_ms",
            )?;
            for b in &batch.breakers {
                upsert.execute(params![
                    b.key,
                    breaker_state(b.state),
                    b.open_until_ms.map(int),
                    int(b.failures),
                    int(b.successes),
                    now
                ])?;
            }
        }
        if let Some(on) = batch.emergency_stop {
            tx.execute(
                "INSERT INTO settings (key, value) VALUES ('emergency_stop', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![if on { "true" } else { "false" }],
            )?;
        }
        if let Some(before) = batch.prune_before_ms {
            tx.execute("DELETE FROM outcomes WHERE at_ms < ?1", params![int(before)])?;
            tx.execute("DELETE FROM audit WHERE at_ms < ?1", params![int(before)])?;
        }
        // The row caps of the append-only tables (ids grow: the oldest are the smallest).
        if !batch.outcomes.is_empty() {
            tx.execute(
                "DELETE FROM outcomes WHERE id <= (SELECT max(id) FROM outcomes) - ?1",
                [int(self.caps.outcomes)],
            )?;
        }
        if !batch.audits.is_empty() {
            tx.execute(
                "DELETE FROM audit WHERE id <= (SELECT max(id) FROM audit) - ?1",
                [int(self.caps.audit)],
            )?;
        }
        Ok(())
    }
}

fn file_error(path: &Path, e: rusqlite::Error) -> Error {
    Error::Store(format!("{}: {e}", path.display()))
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

fn breaker_state(s: BreakerState) -> &'static str {
    match s {
        BreakerState::Closed => "closed",
        BreakerState::Open => "open",
        BreakerState::HalfOpen => "half_open",
    }
}

fn outcome_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutcomeRecord> {
    let scopes: String = r.get(9)?;
    Ok(OutcomeRecord {
        at_ms: uint(r.get(0)?),
        job_id: r.get(1)?,
        job_type: r.get(2)?,
        error_class: r.get(3)?,
        tenant: r.get(4)?,
        attempt_number: r.get(5)?,
        delay_ms: uint(r.get(6)?),
        clock_ms: uint(r.get(7)?),
        success: r.get(8)?,
        scopes: serde_json::from_str(&scopes).unwrap_or_default(),
    })
}

const OUTCOME_COLUMNS: &str =
    "at_ms, job_id, job_type, error_class, tenant, attempt_number, delay_ms, clock_ms, success, scopes";

impl Store for SqliteStore {
    fn url(&self) -> String {
        format!("sqlite://{}", self.path.display())
    }

    fn write(&self, batch: &Batch) -> Result<()> {
        if batch.is_empty() && batch.prune_before_ms.is_none() {
            return Ok(());
        }
        {
            let mut conn = self.conn();
            let tx = conn.transaction().map_err(|e| self.fail(e))?;
            self.write_batch(&tx, batch).map_err(|e| self.fail(e))?;
            tx.commit().map_err(|e| self.fail(e))?;
        }
        let written = (batch.learned.len() + batch.breakers.len()) as u64;
        let unchecked = self.unchecked.fetch_add(written, std::sync::atomic::Ordering::Relaxed) + written;
        if unchecked >= (self.caps.learned.min(self.caps.breakers) / 10).max(1) {
            self.trim().map_err(|e| self.fail(e))?;
        }
        Ok(())
    }

    fn restore(&self, history_limit: usize) -> Result<Restored> {
        let conn = self.conn();
        let fail = |e| self.fail(e);
        let learned = conn
            .prepare("SELECT job_type, error_class, scope, model FROM learned")
            .and_then(|mut s| {
                s.query_map([], |r| {
                    Ok(LearnedRow {
                        job_type: r.get(0)?,
                        error_class: r.get(1)?,
                        scope: r.get(2)?,
                        model: r.get(3)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(fail)?;
        let mut outcomes = conn
            .prepare(&format!("SELECT {OUTCOME_COLUMNS} FROM outcomes ORDER BY id DESC LIMIT ?1"))
            .and_then(|mut s| {
                s.query_map([int(history_limit as u64)], outcome_row)?.collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(fail)?;
        outcomes.reverse();
        let breakers = conn
            .prepare("SELECT breaker_key, state, open_until_ms, failure_count, success_count FROM circuit_breaker_state")
            .and_then(|mut s| {
                s.query_map([], |r| {
                    let state: String = r.get(1)?;
                    let (failures, successes) = (uint(r.get(3)?), uint(r.get(4)?));
                    let calls = failures + successes;
                    Ok(BreakerSnapshot {
                        key: r.get(0)?,
                        state: match state.as_str() {
                            "open" => BreakerState::Open,
                            "half_open" => BreakerState::HalfOpen,
                            _ => BreakerState::Closed,
                        },
                        failures,
                        successes,
                        failure_rate: if calls == 0 { 0.0 } else { failures as f64 / calls as f64 },
                        open_until_ms: r.get::<_, Option<i64>>(2)?.map(uint),
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(fail)?;
        let emergency: Option<String> = conn
            .query_row("SELECT value FROM settings WHERE key = 'emergency_stop'", [], |r| r.get(0))
            .optional()
            .map_err(fail)?;
        Ok(Restored {
            learned,
            outcomes,
            breakers,
            emergency_stop: emergency.map(|v| v == "true"),
            ..Restored::default()
        })
    }

    fn outcomes(&self, since_ms: u64, limit: usize) -> Result<Vec<OutcomeRecord>> {
        let conn = self.conn();
        let mut rows = conn
            .prepare_cached(&format!(
                "SELECT {OUTCOME_COLUMNS} FROM outcomes WHERE at_ms >= ?1 ORDER BY id DESC LIMIT ?2"
            ))
            .and_then(|mut s| {
                s.query_map(params![int(since_ms), int(limit as u64)], outcome_row)?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(|e| self.fail(e))?;
        rows.reverse();
        Ok(rows)
    }

    fn audit(&self, limit: usize) -> Result<Vec<AuditRecord>> {
        let conn = self.conn();
        let rows = conn
            .prepare_cached("SELECT at_ms, features, decision FROM audit ORDER BY id DESC LIMIT ?1")
            .and_then(|mut s| {
                s.query_map([int(limit as u64)], |r| {
                    Ok((uint(r.get(0)?), r.get::<_, String>(1)?, r.get::<_, String>(2)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(|e| self.fail(e))?;
        rows.into_iter()
            .map(|(at_ms, features, decision)| {
                Ok(AuditRecord {
                    at_ms,
                    features: serde_json::from_str(&features)
                        .map_err(|e| self.corrupt("audit.features", e))?,
                    decision: serde_json::from_str(&decision)
                        .map_err(|e| self.corrupt("audit.decision", e))?,
                })
            })
            .collect()
    }

    fn dlq_put(&self, e: &DeadLetter) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO dead_letters (id, job_id, job_type, status, failure_reason, payload_ref, resolution_note, added_ms, updated_ms, entry)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (id) DO UPDATE SET status = excluded.status, resolution_note = excluded.resolution_note,
                   updated_ms = excluded.updated_ms, entry = excluded.entry",
                params![
                    e.id,
                    e.job_id,
                    e.job_type,
                    e.status.as_str(),
                    e.failure_reason,
                    e.payload_ref,
                    e.resolution_note,
                    int(e.added_ms),
                    int(e.updated_ms),
                    json(e)
                ],
            )
            .map_err(|e| self.fail(e))?;
        Ok(())
    }

    fn dlq_get(&self, id: &str) -> Result<Option<DeadLetter>> {
        let entry: Option<String> = self
            .conn()
            .query_row("SELECT entry FROM dead_letters WHERE id = ?1", [id], |r| r.get(0))
            .optional()
            .map_err(|e| self.fail(e))?;
        entry
            .map(|text| serde_json::from_str(&text).map_err(|e| self.corrupt("dead_letters.entry", e)))
            .transpose()
    }

    fn dlq_list(&self, q: &DeadLetterQuery) -> Result<Vec<DeadLetter>> {
        let conn = self.conn();
        let rows = conn
            .prepare_cached(
                "SELECT entry FROM dead_letters WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR job_type = ?2)
                 ORDER BY added_ms DESC, id DESC LIMIT ?3 OFFSET ?4",
            )
            .and_then(|mut s| {
                s.query_map(
                    params![q.status.map(|s| s.as_str()), q.job_type, int(q.limit as u64), int(q.offset as u64)],
                    |r| r.get::<_, String>(0),
                )?
                .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(|e| self.fail(e))?;
        rows.iter()
            .map(|t| serde_json::from_str(t).map_err(|e| self.corrupt("dead_letters.entry", e)))
            .collect()
    }

    fn dlq_count(&self, status: Option<DeadLetterStatus>) -> Result<u64> {
        let n: i64 = self
            .conn()
            .query_row(
                "SELECT COUNT(*) FROM dead_letters WHERE (?1 IS NULL OR status = ?1)",
                [status.map(|s| s.as_str())],
                |r| r.get(0),
            )
            .map_err(|e| self.fail(e))?;
        Ok(uint(n))
    }

    fn model_put(&self, m: &ModelRecord) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO models (version, status, sidecar, metrics, bytes, path, created_ms, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (version) DO UPDATE SET status = excluded.status, sidecar = excluded.sidecar,
                   metrics = excluded.metrics, bytes = excluded.bytes, path = excluded.path, updated_ms = excluded.updated_ms",
                params![
                    m.version,
                    m.status,
                    json(&m.sidecar),
                    json(&m.metrics),
                    m.bytes,
                    m.path,
                    int(m.created_ms),
                    int(m.updated_ms)
                ],
            )
            .map_err(|e| self.fail(e))?;
        Ok(())
    }

    fn setting_get(&self, key: &str) -> Result<Option<String>> {
        self.conn()
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.fail(e))
    }

    fn setting_put(&self, key: &str, json: &str) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, json],
            )
            .map_err(|e| self.fail(e))?;
        Ok(())
    }

    fn settings_load(&self) -> Result<Option<(u64, String)>> {
        self.operator_load()
    }

    fn settings_commit(&self, expected: u64, doc: &str, change: &str) -> Result<bool> {
        self.operator_commit(expected, doc, change)
    }

    fn settings_audit(&self, limit: usize) -> Result<Vec<String>> {
        self.operator_changes(limit)
    }

    fn model_get(&self, version: &str) -> Result<Option<ModelRecord>> {
        let conn = self.conn();
        conn.query_row(
            "SELECT version, status, sidecar, metrics, bytes, path, created_ms, updated_ms FROM models WHERE version = ?1",
            [version],
            model_row,
        )
        .optional()
        .map_err(|e| self.fail(e))
    }

    fn model_list(&self) -> Result<Vec<ModelRecord>> {
        let conn = self.conn();
        conn.prepare_cached(
            "SELECT version, status, sidecar, metrics, NULL, path, created_ms, updated_ms FROM models ORDER BY created_ms, version",
        )
        .and_then(|mut s| s.query_map([], model_row)?.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| self.fail(e))
    }
}

fn model_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ModelRecord> {
    let (sidecar, metrics): (String, String) = (r.get(2)?, r.get(3)?);
    Ok(ModelRecord {
        version: r.get(0)?,
        status: r.get(1)?,
        sidecar: serde_json::from_str(&sidecar).unwrap_or_default(),
        metrics: serde_json::from_str(&metrics).unwrap_or_default(),
        bytes: r.get(4)?,
        path: r.get(5)?,
        created_ms: uint(r.get(6)?),
        updated_ms: uint(r.get(7)?),
    })
}

impl SqliteStore {
    fn corrupt(&self, what: &str, e: serde_json::Error) -> Error {
        Error::Store(format!("{}: unreadable {what}: {e}", self.path.display()))
    }
}
