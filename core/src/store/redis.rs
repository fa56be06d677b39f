//! The fleet store: Redis, shared by every worker that points at it.
//!
//! - **Learning.** Each recorded outcome is appended to one stream (`XADD`, atomic and
//!   totally ordered); every worker folds the other workers' outcomes into its own
//!   learned statistics, so the fleet learns as one engine would. A worker that starts
//!   replays the stream (bounded by `stream_max`) and starts warm.
//! - **Budgets, tenant quotas, concurrency.** Each worker publishes its own counts over
//!   the budget window and reads the sum of the others'; every guardrail check adds them.
//! - **Circuit breakers.** A breaker one worker opens is open for all until its
//!   cool-down ends (the enhanced-retry documents' "distributed circuit breaker").
//! - **The emergency stop.** One key; set by any worker, obeyed by all.
//! - The dead-letter queue, the audit trail and the model registry, shared.
//!
//! Only the engine's writer thread and explicit calls (dead letters, models) talk to
//! Redis, each bounded by `timeout_ms`; decisions read local state and never wait on it.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use redis::streams::{StreamId, StreamRangeReply, StreamReadReply};
use redis::{Connection, RedisResult};

use super::contract::{
    AuditRecord, Batch, Fleet, FleetCounts, FleetView, ModelRecord, OutcomeRecord, Restored, Store,
};
use crate::breaker::BreakerState;
use crate::dlq::{DeadLetter, DeadLetterQuery, DeadLetterStatus};
use crate::error::{Error, Result};

/// Longest any Redis call may take (connect, read or write) by default. Only the writer
/// thread and explicit calls wait this long; decisions never wait on Redis.
pub const DEFAULT_TIMEOUT_MS: u64 = 1_000;
/// Outcomes the shared stream keeps (what a starting worker replays) by default.
pub const DEFAULT_STREAM_MAX: u64 = 100_000;
/// Audit records kept (newest).
pub const AUDIT_MAX: usize = 100_000;
/// A worker that has not published its counts for this long is gone.
const WORKER_TTL_MS: u64 = 5_000;

/// Where and how to reach Redis.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// The URL handed to the client (with the password, if any).
    url: String,
    /// The URL as shown in metrics and errors (without the password).
    pub display: String,
    pub timeout: Duration,
    pub stream_max: u64,
    /// Prefix of every key (`smartretry:`); the database number isolates fleets too.
    pub prefix: String,
}

impl RedisOptions {
    /// `redis://[:password@]host:port/db?timeout_ms=N&stream_max=N&prefix=P`; `password`
    /// is used when the URL has none (`RETRY_REDIS_PASSWORD`).
    pub fn from_url(url: &str, password: Option<&str>) -> Result<RedisOptions> {
        let (base, params) = super::url::split_query(url);
        let timeout = Duration::from_millis(super::url::query_ms(&params, "timeout_ms", DEFAULT_TIMEOUT_MS)?);
        let stream_max = match params.iter().find(|(k, _)| *k == "stream_max") {
            None => DEFAULT_STREAM_MAX,
            Some((_, v)) => v.parse().ok().filter(|n| (100..=100_000_000).contains(n)).ok_or_else(|| {
                Error::config("store.stream_max", format!("expected 100–100000000, got {v:?}"))
            })?,
        };
        let prefix =
            params.iter().find(|(k, _)| *k == "prefix").map_or("smartretry:", |(_, v)| v).to_string();
        let rest = base
            .strip_prefix("redis://")
            .ok_or_else(|| Error::config("store", "expected redis://host:port/db"))?;
        let (userinfo, hostpart) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        if hostpart.is_empty() || hostpart.starts_with('/') {
            return Err(Error::config(
                "store",
                format!("{:?} names no host: use redis://host:port/db", redact(base)),
            ));
        }
        let url = match (userinfo, password.filter(|p| !p.is_empty())) {
            (None, Some(p)) => format!("redis://:{}@{hostpart}", percent_encode(p)),
            _ => base.to_string(),
        };
        redis::Client::open(url.as_str())
            .map_err(|e| Error::config("store", format!("{}: {e}", redact(base))))?;
        Ok(RedisOptions { url, display: format!("redis://{hostpart}"), timeout, stream_max, prefix })
    }
}

/// The URL without its user information (passwords stay out of metrics and logs).
fn redact(url: &str) -> String {
    match url.strip_prefix("redis://").and_then(|r| r.rsplit_once('@')) {
        Some((_, host)) => format!("redis://***@{host}"),
        None => url.to_string(),
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub struct RedisStore {
    opts: RedisOptions,
    client: redis::Client,
    /// One connection, re-made after any failure.
    conn: Mutex<Option<Connection>>,
    worker: String,
}

impl RedisStore {
    /// A store on this Redis. Does not connect yet: an unreachable Redis is a degraded
    /// store (decisions go on, records wait), not a failed start.
    pub fn open(opts: &RedisOptions) -> Result<RedisStore> {
        let client = redis::Client::open(opts.url.as_str())
            .map_err(|e| Error::config("store", format!("{}: {e}", opts.display)))?;
        // Unique per store, also for two opened by one process in one millisecond (a
        // shared id would make each take the other's outcomes for its own and skip them).
        static OPENED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nth = OPENED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let worker = format!(
            "{:x}-{:x}-{nth}",
            std::process::id(),
            crate::backoff::mix64(crate::time::now_ms() ^ (&client as *const _ as u64))
        );
        Ok(RedisStore { opts: opts.clone(), client, conn: Mutex::new(None), worker })
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.opts.prefix)
    }

    fn lock(&self) -> MutexGuard<'_, Option<Connection>> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Run `f` on the connection (connecting first if needed); any failure drops the
    /// connection so the next call reconnects.
    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> RedisResult<T>) -> Result<T> {
        let mut slot = self.lock();
        if slot.is_none() {
            let conn = self.client.get_connection_with_timeout(self.opts.timeout).and_then(|c| {
                c.set_read_timeout(Some(self.opts.timeout))?;
                c.set_write_timeout(Some(self.opts.timeout))?;
                Ok(c)
            });
            *slot = Some(conn.map_err(|e| self.fail(e))?);
        }
        let conn =
            slot.as_mut().ok_or_else(|| Error::Store(format!("{}: not connected", self.opts.display)))?;
        f(conn).map_err(|e| {
            *slot = None;
            self.fail(e)
        })
    }

    fn fail(&self, e: redis::RedisError) -> Error {
        Error::Store(format!("{}: {e}", self.opts.display))
    }

    /// Every outcome in the stream after `from` (exclusive), in chunks.
    fn read_stream(&self, from: &str, max: usize) -> Result<(Vec<(String, OutcomeRecord)>, String)> {
        let key = self.key("outcomes");
        let mut cursor = from.to_string();
        let mut out = Vec::new();
        loop {
            let chunk = (max - out.len()).min(10_000);
            if chunk == 0 {
                break;
            }
            let reply: Option<StreamReadReply> = self.with(|c| {
                redis::cmd("XREAD").arg("COUNT").arg(chunk).arg("STREAMS").arg(&key).arg(&cursor).query(c)
            })?;
            let ids: Vec<StreamId> = reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids).collect();
            let Some(last) = ids.last() else { break };
            cursor = last.id.clone();
            let n = ids.len();
            out.extend(ids.iter().filter_map(|id| {
                let worker: String = id.get("w")?;
                let record: String = id.get("r")?;
                Some((worker, serde_json::from_str(&record).ok()?))
            }));
            if n < chunk {
                break;
            }
        }
        Ok((out, cursor))
    }

    /// The id of the last entry of the outcome stream ("0" when empty).
    fn stream_end(&self) -> Result<String> {
        let key = self.key("outcomes");
        let last: StreamRangeReply =
            self.with(|c| redis::cmd("XREVRANGE").arg(&key).arg("+").arg("-").arg("COUNT").arg(1).query(c))?;
        Ok(last.ids.first().map_or_else(|| "0".to_string(), |id| id.id.clone()))
    }

    /// The worker id this store publishes under.
    pub fn worker(&self) -> &str {
        &self.worker
    }
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

impl Store for RedisStore {
    fn url(&self) -> String {
        self.opts.display.clone()
    }

    fn write(&self, batch: &Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        let outcomes = self.key("outcomes");
        for o in &batch.outcomes {
            pipe.cmd("XADD")
                .arg(&outcomes)
                .arg("MAXLEN")
                .arg("~")
                .arg(self.opts.stream_max)
                .arg("*")
                .arg("w")
                .arg(&self.worker)
                .arg("r")
                .arg(json(o))
                .ignore();
        }
        if !batch.audits.is_empty() {
            let audit = self.key("audit");
            let records: Vec<String> = batch.audits.iter().map(json).collect();
            pipe.cmd("LPUSH").arg(&audit).arg(records).ignore();
            pipe.cmd("LTRIM").arg(&audit).arg(0).arg(AUDIT_MAX - 1).ignore();
        }
        let breakers = self.key("breakers");
        for b in &batch.breakers {
            match (b.state, b.open_until_ms) {
                (BreakerState::Open, Some(until)) => {
                    pipe.cmd("HSET").arg(&breakers).arg(&b.key).arg(until).ignore()
                }
                _ => pipe.cmd("HDEL").arg(&breakers).arg(&b.key).ignore(),
            };
        }
        if let Some(on) = batch.emergency_stop {
            pipe.cmd("SET").arg(self.key("emergency")).arg(if on { "1" } else { "0" }).ignore();
        }
        if let Some(before) = batch.prune_before_ms {
            // The age limit (`retention_days`), beside the count limit (`stream_max`):
            // entries are ided by the time Redis took them.
            pipe.cmd("XTRIM").arg(&outcomes).arg("MINID").arg(before).ignore();
        }
        self.with(|c| pipe.query::<()>(c))
    }

    fn restore(&self, _history_limit: usize) -> Result<Restored> {
        // An unreachable Redis starts this engine cold; its writer catches up later.
        let Ok((outcomes, cursor)) = self.read_stream("0", self.opts.stream_max as usize) else {
            return Ok(Restored { relearn: true, cursor: "0".into(), ..Restored::default() });
        };
        let breakers: Vec<(String, u64)> =
            self.with(|c| redis::cmd("HGETALL").arg(self.key("breakers")).query(c)).unwrap_or_default();
        let emergency: Option<String> =
            self.with(|c| redis::cmd("GET").arg(self.key("emergency")).query(c)).unwrap_or_default();
        Ok(Restored {
            learned: Vec::new(),
            // All of them: they teach the learner; the history ring keeps what fits.
            outcomes: outcomes.into_iter().map(|(_, o)| o).collect(),
            breakers: breakers
                .into_iter()
                .map(|(key, until)| crate::breaker::BreakerSnapshot {
                    key,
                    state: BreakerState::Open,
                    failures: 0,
                    successes: 0,
                    failure_rate: 0.0,
                    open_until_ms: Some(until),
                })
                .collect(),
            emergency_stop: emergency.map(|v| v == "1"),
            relearn: true,
            cursor,
        })
    }

    fn outcomes(&self, since_ms: u64, limit: usize) -> Result<Vec<OutcomeRecord>> {
        let key = self.key("outcomes");
        let reply: StreamRangeReply = self
            .with(|c| redis::cmd("XREVRANGE").arg(&key).arg("+").arg("-").arg("COUNT").arg(limit).query(c))?;
        let mut out: Vec<OutcomeRecord> = reply
            .ids
            .iter()
            .filter_map(|id| serde_json::from_str::<OutcomeRecord>(&id.get::<String>("r")?).ok())
            .filter(|o| o.at_ms >= since_ms)
            .collect();
        out.reverse();
        Ok(out)
    }

    fn audit(&self, limit: usize) -> Result<Vec<AuditRecord>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let rows: Vec<String> =
            self.with(|c| redis::cmd("LRANGE").arg(self.key("audit")).arg(0).arg(limit - 1).query(c))?;
        Ok(rows.iter().filter_map(|r| serde_json::from_str(r).ok()).collect())
    }

    fn dlq_put(&self, e: &DeadLetter) -> Result<()> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HSET")
            .arg(self.key("dlq"))
            .arg(&e.id)
            .arg(json(e))
            .ignore()
            .cmd("ZADD")
            .arg(self.key("dlq:added"))
            .arg(e.added_ms)
            .arg(&e.id)
            .ignore();
        self.with(|c| pipe.query::<()>(c))
    }

    fn dlq_get(&self, id: &str) -> Result<Option<DeadLetter>> {
        let entry: Option<String> =
            self.with(|c| redis::cmd("HGET").arg(self.key("dlq")).arg(id).query(c))?;
        entry
            .map(|t| {
                serde_json::from_str(&t).map_err(|e| {
                    Error::Store(format!("{}: unreadable dead letter {id}: {e}", self.opts.display))
                })
            })
            .transpose()
    }

    fn dlq_list(&self, q: &DeadLetterQuery) -> Result<Vec<DeadLetter>> {
        let ids: Vec<String> =
            self.with(|c| redis::cmd("ZREVRANGE").arg(self.key("dlq:added")).arg(0).arg(-1).query(c))?;
        let mut out = Vec::new();
        let mut skipped = 0;
        for chunk in ids.chunks(500) {
            let rows: Vec<Option<String>> =
                self.with(|c| redis::cmd("HMGET").arg(self.key("dlq")).arg(chunk).query(c))?;
            for e in rows.iter().flatten().filter_map(|t| serde_json::from_str::<DeadLetter>(t).ok()) {
                if !q.matches(&e) {
                    continue;
                }
                if skipped < q.offset {
                    skipped += 1;
                    continue;
                }
                out.push(e);
                if out.len() >= q.limit {
                    return Ok(out);
                }
            }
        }
        Ok(out)
    }

    fn dlq_count(&self, status: Option<DeadLetterStatus>) -> Result<u64> {
        match status {
            None => self.with(|c| redis::cmd("HLEN").arg(self.key("dlq")).query(c)),
            Some(s) => {
                let all: Vec<String> = self.with(|c| redis::cmd("HVALS").arg(self.key("dlq")).query(c))?;
                Ok(all
                    .iter()
                    .filter_map(|t| serde_json::from_str::<DeadLetter>(t).ok())
                    .filter(|e| e.status == s)
                    .count() as u64)
            }
        }
    }

    fn model_put(&self, m: &ModelRecord) -> Result<()> {
        self.with(|c| redis::cmd("HSET").arg(self.key("models")).arg(&m.version).arg(json(m)).query::<()>(c))
    }

    fn setting_get(&self, key: &str) -> Result<Option<String>> {
        self.with(|c| redis::cmd("HGET").arg(self.key("settings")).arg(key).query(c))
    }

    fn setting_put(&self, key: &str, json: &str) -> Result<()> {
        self.with(|c| redis::cmd("HSET").arg(self.key("settings")).arg(key).arg(json).query::<()>(c))
    }

    fn settings_load(&self) -> Result<Option<(u64, String)>> {
        let (version, doc): (Option<u64>, Option<String>) = self.with(|c| {
            redis::cmd("MGET").arg(self.key("operator:version")).arg(self.key("operator:doc")).query(c)
        })?;
        Ok(version.zip(doc))
    }

    fn settings_commit(&self, expected: u64, doc: &str, change: &str) -> Result<bool> {
        // One script: the version check and the writes are atomic for the whole fleet.
        const COMMIT: &str =
            "if tonumber(redis.call('GET', KEYS[1]) or '0') ~= tonumber(ARGV[1]) then return 0 end
            redis.call('SET', KEYS[1], ARGV[1] + 1)
            redis.call('SET', KEYS[2], ARGV[2])
            redis.call('LPUSH', KEYS[3], ARGV[3])
            redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[4]) - 1)
            return 1";
        let done: i64 = self.with(|c| {
            redis::cmd("EVAL")
                .arg(COMMIT)
                .arg(3)
                .arg(self.key("operator:version"))
                .arg(self.key("operator:doc"))
                .arg(self.key("operator:changes"))
                .arg(expected)
                .arg(doc)
                .arg(change)
                .arg(super::contract::SETTINGS_AUDIT_MAX)
                .query(c)
        })?;
        Ok(done == 1)
    }

    fn settings_audit(&self, limit: usize) -> Result<Vec<String>> {
        let last = limit.max(1) as isize - 1;
        self.with(|c| redis::cmd("LRANGE").arg(self.key("operator:changes")).arg(0).arg(last).query(c))
    }

    fn model_get(&self, version: &str) -> Result<Option<ModelRecord>> {
        let m: Option<String> =
            self.with(|c| redis::cmd("HGET").arg(self.key("models")).arg(version).query(c))?;
        Ok(m.and_then(|t| serde_json::from_str(&t).ok()))
    }

    fn model_list(&self) -> Result<Vec<ModelRecord>> {
        let all: Vec<String> = self.with(|c| redis::cmd("HVALS").arg(self.key("models")).query(c))?;
        let mut out: Vec<ModelRecord> = all
            .iter()
            .filter_map(|t| serde_json::from_str::<ModelRecord>(t).ok())
            .map(|m| ModelRecord { bytes: None, ..m })
            .collect();
        out.sort_by(|a, b| a.created_ms.cmp(&b.created_ms).then_with(|| a.version.cmp(&b.version)));
        Ok(out)
    }

    fn fleet(&self) -> Option<&dyn Fleet> {
        Some(self)
    }
}

impl Fleet for RedisStore {
    fn worker_id(&self) -> &str {
        &self.worker
    }

    fn pull_outcomes(&self, cursor: &mut String, max: usize) -> Result<Vec<OutcomeRecord>> {
        if cursor.is_empty() {
            *cursor = self.stream_end()?;
        }
        let (entries, next) = self.read_stream(cursor, max)?;
        *cursor = next;
        Ok(entries.into_iter().filter(|(w, _)| *w != self.worker).map(|(_, o)| o).collect())
    }

    fn exchange(&self, mine: &FleetCounts, _now_ms: u64) -> Result<FleetView> {
        let wall = crate::time::now_ms();
        let workers = self.key("workers");
        let counts_key = |w: &str| self.key(&format!("counts:{w}"));
        let (live, emergency, breakers): (Vec<String>, Option<String>, Vec<(String, u64)>) =
            self.with(|c| {
                redis::pipe()
                    .cmd("SET")
                    .arg(counts_key(&self.worker))
                    .arg(json(mine))
                    .arg("PX")
                    .arg(WORKER_TTL_MS)
                    .ignore()
                    .cmd("ZADD")
                    .arg(&workers)
                    .arg(wall)
                    .arg(&self.worker)
                    .ignore()
                    .cmd("ZREMRANGEBYSCORE")
                    .arg(&workers)
                    .arg("-inf")
                    .arg(wall.saturating_sub(WORKER_TTL_MS))
                    .ignore()
                    .cmd("ZRANGE")
                    .arg(&workers)
                    .arg(0)
                    .arg(-1)
                    .cmd("GET")
                    .arg(self.key("emergency"))
                    .cmd("HGETALL")
                    .arg(self.key("breakers"))
                    .query(c)
            })?;
        let others: Vec<String> = live.into_iter().filter(|w| *w != self.worker).collect();
        let mut sum = FleetCounts::default();
        if !others.is_empty() {
            let keys: Vec<String> = others.iter().map(|w| counts_key(w)).collect();
            let counts: Vec<Option<String>> = self.with(|c| redis::cmd("MGET").arg(&keys).query(c))?;
            let mut tenants = std::collections::HashMap::<String, u64>::new();
            for theirs in counts.iter().flatten().filter_map(|t| serde_json::from_str::<FleetCounts>(t).ok())
            {
                sum.first_attempts += theirs.first_attempts;
                sum.retries += theirs.retries;
                sum.in_flight += theirs.in_flight;
                for (t, n) in theirs.tenant_retries {
                    *tenants.entry(t).or_default() += n;
                }
            }
            sum.tenant_retries = tenants.into_iter().collect();
        }
        Ok(FleetView {
            others: sum,
            workers: others.len() as u64 + 1,
            emergency_stop: emergency.map(|v| v == "1"),
            open_breakers: breakers,
        })
    }
}
