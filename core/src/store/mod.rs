//! Where state lives.
//!
//! - [`MemoryStore`] (the library's default): one process, nothing kept after it exits.
//! - [`SqliteStore`] (`sqlite:///path.db`): attempt history with retention, learned
//!   statistics (a restarted engine decides as well as before it stopped), the sampled
//!   decision audit trail, the dead-letter queue, circuit-breaker state, the emergency
//!   stop and the model registry, in one WAL-mode file with versioned migrations.
//! - [`RedisStore`] (`redis://host:port/db`): the same, shared by a fleet, plus the
//!   state workers learn and spend together (see `store::redis`).
//!
//! The decision path never touches a durable store: it reads the engine's own state.
//! Outcomes and audit records go to a bounded queue that the engine's writer thread
//! (`engine/writer.rs`) flushes in batches; while the store is unreachable they wait
//! there, and what does not fit is dropped and counted (`store_dropped_total`).
//!
//! `contract.rs` holds the [`Store`] trait and the records that cross it; each adapter
//! implements it and imports nothing else of this folder but `url.rs`.

mod contract;
mod memory;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "sqlite")]
mod sqlite;
mod url;

use std::sync::Arc;

pub use contract::{
    AuditRecord, Batch, Fleet, FleetCounts, FleetView, HistoryRecord, HistoryStore, LearnedRow, ModelRecord,
    OutcomeRecord, Restored, Store, WindowTotals, SETTINGS_AUDIT_MAX,
};
pub use memory::{MemoryHistory, MemoryStore};
#[cfg(feature = "redis")]
pub use redis::{RedisOptions, RedisStore};
#[cfg(feature = "sqlite")]
pub use sqlite::{SqliteStore, SCHEMA_VERSION as SQLITE_SCHEMA_VERSION};

use crate::error::{Error, Result};

/// Open a store from a URL: `memory` (or empty), `sqlite:///path.db`, `sqlite://rel.db`
/// (`?busy_timeout_ms=N`), `redis://[:password@]host:port/db` (`?timeout_ms=N`).
/// `redis_password` is used when the URL carries none (`RETRY_REDIS_PASSWORD`).
pub fn open(url: &str, redis_password: Option<&str>) -> Result<Arc<dyn Store>> {
    let url = url.trim();
    let (scheme, _) = url.split_once("://").unwrap_or((url, ""));
    match scheme {
        "" | "memory" | "mem" => Ok(Arc::new(MemoryStore::default())),
        #[cfg(feature = "sqlite")]
        "sqlite" => Ok(Arc::new(SqliteStore::open_url(url)?)),
        #[cfg(feature = "redis")]
        "redis" => Ok(Arc::new(RedisStore::open(&RedisOptions::from_url(url, redis_password)?)?)),
        _ => {
            let _ = redis_password;
            Err(Error::config(
                "store",
                format!(
                    "unsupported store {url:?}: expected \"memory\", \"sqlite:///path.db\" or \"redis://host:port/db\"{}",
                    if cfg!(all(feature = "sqlite", feature = "redis")) {
                        ""
                    } else {
                        " (this build lacks the sqlite or redis feature)"
                    }
                ),
            ))
        }
    }
}
