//! The state every handler shares: the engine, the server's own counters, alerts,
//! store health, the recent recommendations and the settings handlers read.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use smartretry::{Decision, Engine, Error, Features};

use super::options::{ServeOptions, DLQ_MAX_BODY_BYTES, TRAIN_MAX_BODY_BYTES};
use super::{alerts, auth, health, metrics};

/// Recommendations kept for `GET /recommendations` (the TUI's live view).
pub const RECENT_RECOMMENDATIONS: usize = 200;

/// One recommendation the server made: what failed and what it said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recent {
    pub features: Features,
    pub decision: Decision,
    pub at: String,
}

/// The state every handler shares.
pub struct App {
    pub engine: Engine,
    pub recent: Mutex<VecDeque<Recent>>,
    pub auth: auth::Auth,
    pub metrics: metrics::ServerMetrics,
    pub alerts: alerts::Alerts,
    pub base: String,
    pub max_body_bytes: usize,
    pub store_health: health::StoreHealth,
    pub strict_health: bool,
    pub max_job_types: usize,
    /// `/attempt` acknowledges after the store's commit by default.
    pub durable_acks: bool,
    /// Put every job a recommendation gives up on in the dead-letter queue.
    pub dlq_on_give_up: bool,
    /// Where models may be read from (`POST /ml/models {"model": "name.onnx"}`).
    pub model_dir: Option<PathBuf>,
    pub max_model_bytes: usize,
    pub(super) started_ms: u64,
}

impl App {
    pub fn new(opts: &ServeOptions) -> Result<App, Error> {
        let engine = Engine::from_config(opts.config.clone())?;
        let auth = auth::Auth::resolve(&opts.auth, engine.store())?;
        let alerts = alerts::Alerts::new(opts.alerts.clone())?;
        if let Err(e) = alerts.load(engine.store()) {
            eprintln!(
                "smartretry serve: the alert history kept in {} is unreadable ({e}): starting a new one",
                engine.store().url()
            );
        }
        let now = smartretry::time::now_ms();
        Ok(App {
            engine,
            recent: Mutex::new(VecDeque::with_capacity(RECENT_RECOMMENDATIONS)),
            auth,
            metrics: metrics::ServerMetrics::default(),
            alerts,
            base: opts.config.api.path.trim_end_matches('/').to_string(),
            max_body_bytes: opts.max_body_bytes,
            store_health: health::StoreHealth::new(now),
            strict_health: opts.strict_health,
            max_job_types: opts.max_job_types,
            durable_acks: opts.durable_acks,
            dlq_on_give_up: opts.dlq.on_give_up,
            model_dir: opts.ml.model_dir.clone(),
            max_model_bytes: opts.ml.max_model_bytes,
            started_ms: now,
        })
    }

    /// The largest request body `path` (below the base path) takes: the server's limit,
    /// or more where the documents promise more (a 1 MiB dead-letter payload, a model).
    pub fn body_limit(&self, path: &str) -> usize {
        match path {
            "/dlq" => self.max_body_bytes.max(DLQ_MAX_BODY_BYTES),
            // Base64 takes 4 bytes per 3, plus the sidecar.
            "/ml/models" => self.max_body_bytes.max(self.max_model_bytes / 3 * 4 + 1024 * 1024),
            "/ml/train" => self.max_body_bytes.max(TRAIN_MAX_BODY_BYTES),
            _ => self.max_body_bytes,
        }
    }

    pub(super) fn remember(&self, features: Features, decision: Decision) {
        let at = smartretry::time::format_rfc3339(smartretry::time::now_ms());
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() == RECENT_RECOMMENDATIONS {
            recent.pop_front();
        }
        recent.push_back(Recent { features, decision, at });
    }

    /// The last `limit` recommendations, newest first.
    pub fn recent(&self, limit: usize) -> Vec<Recent> {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.iter().rev().take(limit).cloned().collect()
    }
}
