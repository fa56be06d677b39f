//! The operators' settings document and its list of changes (see `engine/operator.rs`):
//! a compare-and-set in one IMMEDIATE transaction, so every process on the file agrees.

use rusqlite::{params, OptionalExtension};

use super::{int, uint, SqliteStore};
use crate::error::Result;

impl SqliteStore {
    pub(super) fn operator_load(&self) -> Result<Option<(u64, String)>> {
        self.conn()
            .query_row("SELECT version, doc FROM operator_settings WHERE id = 1", [], |r| {
                Ok((uint(r.get(0)?), r.get(1)?))
            })
            .optional()
            .map_err(|e| self.fail(e))
    }

    pub(super) fn operator_commit(&self, expected: u64, doc: &str, change: &str) -> Result<bool> {
        let mut conn = self.conn();
        let mut commit = || -> rusqlite::Result<bool> {
            // IMMEDIATE: the version read and the write are one step for every process.
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let version: Option<i64> = tx
                .query_row("SELECT version FROM operator_settings WHERE id = 1", [], |r| r.get(0))
                .optional()?;
            if uint(version.unwrap_or(0)) != expected {
                return Ok(false);
            }
            let next = int(expected + 1);
            tx.execute(
                "INSERT INTO operator_settings (id, version, doc) VALUES (1, ?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET version = excluded.version, doc = excluded.doc",
                params![next, doc],
            )?;
            tx.execute(
                "INSERT INTO operator_changes (version, change) VALUES (?1, ?2)",
                params![next, change],
            )?;
            tx.execute(
                "DELETE FROM operator_changes WHERE version <= ?1",
                [next - crate::store::contract::SETTINGS_AUDIT_MAX as i64],
            )?;
            tx.commit()?;
            Ok(true)
        };
        commit().map_err(|e| self.fail(e))
    }

    pub(super) fn operator_changes(&self, limit: usize) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT change FROM operator_changes ORDER BY version DESC LIMIT ?1")
            .map_err(|e| self.fail(e))?;
        let rows = stmt.query_map([int(limit as u64)], |r| r.get(0)).map_err(|e| self.fail(e))?;
        rows.collect::<rusqlite::Result<Vec<String>>>().map_err(|e| self.fail(e))
    }
}
