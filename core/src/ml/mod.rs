//! ML tier: trained models (ONNX) that predict P(success | failure, delay), a registry
//! of their versions, and how a deployed one takes part in decisions.
//!
//! - [`features`]: the feature contract (what each column means) and the sidecar's
//!   feature list; the trainer builds its matrix with the same code.
//! - [`plan`]: the delay is chosen among candidates, evaluated in one batched run, by
//!   the Bayesian tier's objective.
//! - The registry keeps versions with their training metrics; a deployment serves one
//!   version to a sticky share of jobs (canary by `job_id`), and may run another in
//!   shadow (it decides alongside, is logged and compared, and is never served).
//!   Rollback goes to the previous deployment, or to no model at all (Bayesian).
//! - Whatever goes wrong — no runtime, a model that fails at inference — the decision
//!   comes from the tier below, the rationale says so and a metric counts it.
//!
//! The registry's state is plain data ([`MlSnapshot`], serde) so a store can persist it
//! and an engine can be restored from it.

pub mod backend;
mod contract;
pub mod features;
pub mod plan;
mod registry;
#[cfg(feature = "onnx")]
pub mod runtime;
mod sidecar;
#[cfg(feature = "tract")]
mod tract;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use lru::LruCache;

use crate::api::{Decision, Features};
use crate::bayes::BayesConfig;
use crate::error::{Error, Result};
use crate::time;

pub use backend::{MlBackend, Scorer};
pub use features::{FeatureColumn, FeatureSpec, CANDIDATE_DELAY, ENCODING};
pub use plan::DEFAULT_CANDIDATES_MS;
pub use registry::{
    ArmStats, Comparison, Deployment, MlSnapshot, MlStatus, ModelInfo, ShadowStats, StoredModel,
    DRIFT_MIN_OUTCOMES,
};
pub use sidecar::{CalibrationBin, Sidecar, TrainingMetrics, MAX_CANDIDATES};

/// Deployments remembered for rollback.
pub const MAX_HISTORY: usize = 32;
/// Served and shadow predictions kept until the retry's outcome arrives.
pub const PENDING_OUTCOMES: usize = 10_000;

/// A model ready to score: its sidecar, feature spec and runtime session.
pub(crate) struct Loaded {
    pub sidecar: Sidecar,
    spec: FeatureSpec,
    candidates: Vec<u64>,
    strongest: Vec<String>,
    scorer: Scorer,
}

/// A model's advice for one failure.
pub(crate) struct Prediction {
    pub model: Arc<Loaded>,
    pub choice: plan::Choice,
    pub confidence: f64,
    /// P(success) per candidate (for scoring the delay actually served).
    probabilities: Vec<f32>,
}

impl Prediction {
    pub fn at_delay(&self, delay_ms: u64) -> f64 {
        plan::at_delay(&self.model.candidates, &self.probabilities, delay_ms)
    }

    /// The model's part of a rationale: name, version, candidates, calibration, features.
    pub fn describe(&self, out: &mut String) {
        use crate::say::{Ms, Pct, Two};
        let m = &self.model.sidecar;
        crate::say!(
            out,
            "Model ",
            m.name,
            " ",
            m.version,
            " (",
            m.model_type,
            ") gives ",
            Pct(self.choice.p_success),
            " success after ",
            Ms(self.choice.delay_ms),
            ", the lowest expected cost of ",
            self.model.candidates.len() as u64,
            " candidate delays; calibration confidence ",
            Two(self.confidence)
        );
        if !self.model.strongest.is_empty() {
            crate::say!(out, "; strongest features: ", self.model.strongest.join(", "));
        }
    }
}

/// What the ML tier contributes to one decision.
#[derive(Default)]
pub(crate) struct Advice {
    /// The canary picked this job: the served model's prediction, or why it failed.
    pub serve: Option<std::result::Result<Prediction, String>>,
    /// The shadow model's prediction (compared, never served).
    pub shadow: Option<std::result::Result<Prediction, String>>,
    /// The tier should have taken part but cannot (no runtime, model not loadable).
    pub unavailable: Option<Arc<str>>,
}

/// What is live: the loaded models of the current deployment.
#[derive(Default)]
struct Live {
    serving: Option<Arc<Loaded>>,
    /// Share of jobs served, in basis points (0–10 000).
    canary_bp: u64,
    shadow: Option<Arc<Loaded>>,
    /// Why the deployment could not be loaded.
    unavailable: Option<Arc<str>>,
}

#[derive(Clone, Copy)]
enum Arm {
    Ml,
    Bayesian,
}

struct Pending {
    arm: Option<(Arm, f64)>,
    /// (shadow's P(success) at the served delay, served estimate).
    shadow: Option<(f64, f64)>,
}

/// The registry and the live deployment, owned by the engine.
pub(crate) struct MlTier {
    runtime_path: Option<PathBuf>,
    backend: MlBackend,
    live: RwLock<Arc<Live>>,
    registry: Mutex<Registry>,
    pending: Mutex<LruCache<(String, u32), Pending>>,
    pub errors: AtomicU64,
    pub unavailable: AtomicU64,
}

#[derive(Default)]
struct Registry {
    versions: Vec<StoredModel>,
    deployment: Deployment,
    history: Vec<Deployment>,
    comparison: Comparison,
    /// Loaded models of the current and the previous deployment (instant rollback).
    loaded: HashMap<String, Arc<Loaded>>,
}

impl MlTier {
    pub fn new(runtime_path: Option<PathBuf>, backend: MlBackend) -> MlTier {
        MlTier {
            runtime_path,
            backend,
            live: RwLock::new(Arc::new(Live::default())),
            registry: Mutex::new(Registry::default()),
            pending: Mutex::new(LruCache::new(
                std::num::NonZeroUsize::new(PENDING_OUTCOMES).unwrap_or(std::num::NonZeroUsize::MIN),
            )),
            errors: AtomicU64::new(0),
            unavailable: AtomicU64::new(0),
        }
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn live(&self) -> Arc<Live> {
        Arc::clone(&self.live.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// The runtime serving models (ONNX Runtime's library, tract), or why there is none
    /// (loads ONNX Runtime on first call).
    pub fn runtime_status(&self) -> std::result::Result<String, String> {
        backend::runtime_status(self.backend, self.runtime_path.as_deref())
    }

    fn load(&self, stored: &StoredModel) -> Result<Loaded> {
        let spec = stored.sidecar.validate()?;
        let sidecar = stored.sidecar.clone();
        let what = format!("model {} {}", sidecar.name, sidecar.version);
        let scorer = Scorer::load(
            self.backend,
            self.runtime_path.as_deref(),
            &stored.onnx,
            spec.width(),
            sidecar.output.as_deref(),
            &what,
        )?;
        Ok(Loaded { candidates: sidecar.candidates(), strongest: sidecar.strongest(), sidecar, spec, scorer })
    }

    /// Check and keep a new version (loaded once to prove it runs).
    pub fn register(&self, onnx: Vec<u8>, sidecar: Sidecar, now_ms: u64) -> Result<ModelInfo> {
        sidecar.validate()?;
        if self.registry().versions.iter().any(|v| v.sidecar.version == sidecar.version) {
            return Err(Error::invalid(
                "version",
                format!("{:?} is already registered; give the new model its own version", sidecar.version),
            ));
        }
        let stored = StoredModel { sidecar, registered_at: time::format_rfc3339(now_ms), onnx };
        self.load(&stored)?;
        let mut reg = self.registry();
        if reg.versions.iter().any(|v| v.sidecar.version == stored.sidecar.version) {
            return Err(Error::invalid(
                "version",
                format!("{:?} is already registered", stored.sidecar.version),
            ));
        }
        reg.versions.push(stored);
        let info = reg.info(reg.versions.len() - 1);
        Ok(info)
    }

    /// Read `model.onnx` and its sidecar (`sidecar`, else `model.json` beside it).
    pub fn register_files(&self, model: &Path, sidecar: Option<&Path>, now_ms: u64) -> Result<ModelInfo> {
        let sidecar_path = sidecar.map(Path::to_path_buf).unwrap_or_else(|| model.with_extension("json"));
        let onnx = std::fs::read(model)
            .map_err(|e| Error::invalid("model", format!("cannot read {}: {e}", model.display())))?;
        let text = std::fs::read_to_string(&sidecar_path)
            .map_err(|e| Error::invalid("sidecar", format!("cannot read {}: {e}", sidecar_path.display())))?;
        let parsed = Sidecar::from_json(&text).map_err(|e| e.within("sidecar"))?;
        self.register(onnx, parsed, now_ms)
    }

    pub fn versions(&self) -> Vec<ModelInfo> {
        let reg = self.registry();
        (0..reg.versions.len()).map(|i| reg.info(i)).collect()
    }

    /// Serve `version` to `canary_percent` % of jobs (sticky per job id); the shadow stays.
    pub fn deploy(&self, version: &str, canary_percent: f64, now_ms: u64) -> Result<Deployment> {
        if !(0.0..=100.0).contains(&canary_percent) {
            return Err(Error::invalid("canary_percent", format!("must be 0–100, got {canary_percent}")));
        }
        self.change(now_ms, |d| {
            d.serving = Some(version.to_string());
            d.canary_percent = canary_percent;
        })
    }

    /// Run `version` in shadow (or stop the shadow with `None`).
    pub fn shadow(&self, version: Option<&str>, now_ms: u64) -> Result<Deployment> {
        self.change(now_ms, |d| d.shadow = version.map(str::to_string))
    }

    /// Back to the deployment before the current one.
    pub fn rollback(&self, now_ms: u64) -> Result<Deployment> {
        let mut reg = self.registry();
        let previous = reg.history.pop().ok_or_else(|| Error::NotFound {
            what: "a previous deployment to roll back to (use rollback to Bayesian)".into(),
        })?;
        let live = match self.make_live(&mut reg, &previous) {
            Ok(live) => live,
            Err(e) => {
                reg.history.push(previous);
                return Err(e);
            }
        };
        reg.deployment = Deployment { since: Some(time::format_rfc3339(now_ms)), ..previous };
        self.publish(&mut reg, live);
        Ok(reg.deployment.clone())
    }

    /// No model serves or watches: decisions come from the Bayesian tier.
    pub fn rollback_to_bayesian(&self, now_ms: u64) -> Result<Deployment> {
        self.change(now_ms, |d| {
            d.serving = None;
            d.canary_percent = 0.0;
            d.shadow = None;
        })
    }

    fn change(&self, now_ms: u64, edit: impl FnOnce(&mut Deployment)) -> Result<Deployment> {
        let mut reg = self.registry();
        let mut next = reg.deployment.clone();
        edit(&mut next);
        next.since = Some(time::format_rfc3339(now_ms));
        for version in [&next.serving, &next.shadow].into_iter().flatten() {
            if !reg.versions.iter().any(|v| &v.sidecar.version == version) {
                return Err(Error::NotFound { what: format!("model version {version:?}") });
            }
        }
        let live = self.make_live(&mut reg, &next)?;
        let current = std::mem::replace(&mut reg.deployment, next);
        if current.serving.is_some() || current.shadow.is_some() || !reg.history.is_empty() {
            reg.history.push(current);
            if reg.history.len() > MAX_HISTORY {
                reg.history.remove(0);
            }
        }
        self.publish(&mut reg, live);
        Ok(reg.deployment.clone())
    }

    /// Load the deployment's models (or fail, changing nothing).
    fn make_live(&self, reg: &mut Registry, d: &Deployment) -> Result<Live> {
        let mut get = |version: &Option<String>| -> Result<Option<Arc<Loaded>>> {
            let Some(version) = version else { return Ok(None) };
            if let Some(loaded) = reg.loaded.get(version) {
                return Ok(Some(Arc::clone(loaded)));
            }
            let stored = reg
                .versions
                .iter()
                .find(|v| &v.sidecar.version == version)
                .ok_or_else(|| Error::NotFound { what: format!("model version {version:?}") })?;
            let loaded = Arc::new(self.load(stored)?);
            reg.loaded.insert(version.clone(), Arc::clone(&loaded));
            Ok(Some(loaded))
        };
        Ok(Live {
            serving: get(&d.serving)?,
            canary_bp: (d.canary_percent * 100.0).round() as u64,
            shadow: get(&d.shadow)?,
            unavailable: None,
        })
    }

    fn publish(&self, reg: &mut Registry, live: Live) {
        // Keep loaded what the current and the previous deployment use.
        let keep: Vec<String> = [&reg.deployment]
            .into_iter()
            .chain(reg.history.last())
            .flat_map(|d| [d.serving.clone(), d.shadow.clone()])
            .flatten()
            .collect();
        reg.loaded.retain(|v, _| keep.contains(v));
        *self.live.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(live);
    }

    pub fn snapshot(&self) -> MlSnapshot {
        let reg = self.registry();
        let mut comparison = reg.comparison.clone();
        comparison.derive();
        MlSnapshot {
            versions: reg.versions.clone(),
            deployment: reg.deployment.clone(),
            history: reg.history.clone(),
            comparison,
        }
    }

    /// Replace the registry with a snapshot. Every version is checked; the deployment is
    /// loaded if the runtime can, else kept and reported unavailable (decisions then come
    /// from the Bayesian tier until it can be loaded).
    pub fn restore(&self, snapshot: MlSnapshot) -> Result<()> {
        for (i, v) in snapshot.versions.iter().enumerate() {
            v.sidecar.validate().map_err(|e| e.within(&format!("versions[{i}].sidecar")))?;
        }
        let mut reg = Registry {
            versions: snapshot.versions,
            deployment: snapshot.deployment,
            history: snapshot.history,
            comparison: snapshot.comparison,
            loaded: HashMap::new(),
        };
        let deployment = reg.deployment.clone();
        for version in [&deployment.serving, &deployment.shadow].into_iter().flatten() {
            if !reg.versions.iter().any(|v| &v.sidecar.version == version) {
                return Err(Error::invalid("deployment", format!("names unknown version {version:?}")));
            }
        }
        let live = self.make_live(&mut reg, &deployment).unwrap_or_else(|e| Live {
            unavailable: Some(Arc::from(e.to_string().trim_start_matches("model error: "))),
            ..Live::default()
        });
        let mut current = self.registry();
        *current = reg;
        self.publish(&mut current, live);
        Ok(())
    }

    /// The tier's condition; loads the runtime if nothing has yet, to report on it.
    pub fn status(&self, enabled: bool) -> MlStatus {
        let live = self.live();
        let runtime = self.runtime_status();
        let reason = match &runtime {
            Err(why) => Some(format!("ML tier unavailable: {why}")),
            Ok(_) => live.unavailable.as_ref().map(|w| w.to_string()),
        };
        let snapshot = self.snapshot();
        MlStatus {
            enabled,
            available: reason.is_none(),
            runtime: runtime.ok(),
            reason,
            deployment: snapshot.deployment,
            versions: self.versions(),
            comparison: snapshot.comparison,
            errors_total: self.errors.load(Ordering::Relaxed),
            unavailable_total: self.unavailable.load(Ordering::Relaxed),
        }
    }

    /// Why the tier cannot take part in decisions, when it should.
    fn unavailable_reason(&self, live: &Live) -> Option<Arc<str>> {
        if let Some(why) = &live.unavailable {
            return Some(Arc::clone(why));
        }
        self.runtime_status().err().map(|why| Arc::from(format!("ML tier unavailable: {why}")))
    }

    /// The tier's part in one decision (`None` fields: it has nothing to say).
    pub fn advise(
        &self,
        f: &Features,
        now_ms: u64,
        retries_left: u32,
        cfg: &BayesConfig,
        bits: u64,
        with_shadow: bool,
    ) -> Advice {
        let live = self.live();
        let mut advice = Advice::default();
        if live.serving.is_none() && live.shadow.is_none() {
            if let Some(why) = self.unavailable_reason(&live) {
                advice.unavailable = Some(why);
            }
            return advice;
        }
        if let Some(why) = &live.unavailable {
            advice.unavailable = Some(Arc::clone(why));
            return advice;
        }
        if let Some(model) = &live.serving {
            let slot = match &f.job_id {
                // Stable across processes and hosts, so a fleet agrees on each job's side.
                Some(id) => features::bucket(id, 10_000) as u64,
                None => bits % 10_000,
            };
            if slot < live.canary_bp {
                advice.serve = Some(predict(model, f, now_ms, retries_left, cfg));
            }
        }
        if let (true, Some(model)) = (with_shadow, &live.shadow) {
            advice.shadow = Some(predict(model, f, now_ms, retries_left, cfg));
        }
        advice
    }

    /// After a live decision: count the arms and remember the predictions until the
    /// retry's outcome is recorded.
    pub fn observe(&self, f: &Features, d: &Decision, advice: &Advice) {
        // By the canary's assignment (whatever a guardrail then did to the decision).
        let arm = match &advice.serve {
            Some(_) => Some(Arm::Ml),
            None if self.live().serving.is_some() => Some(Arm::Bayesian),
            None => None,
        };
        let shadow = match &advice.shadow {
            Some(Ok(p)) if d.should_retry => Some((p, p.at_delay(d.delay_ms))),
            _ => None,
        };
        if (arm.is_none() && shadow.is_none()) || !d.should_retry {
            return;
        }
        {
            let mut reg = self.registry();
            let c = &mut reg.comparison;
            match arm {
                Some(Arm::Ml) => {
                    c.ml.decisions += 1;
                    c.ml.delay_ms_total += d.delay_ms;
                }
                Some(Arm::Bayesian) => {
                    c.bayesian.decisions += 1;
                    c.bayesian.delay_ms_total += d.delay_ms;
                }
                None => {}
            }
            if let Some((p, _)) = &shadow {
                let s = &mut c.shadow;
                s.decisions += 1;
                s.model.decisions += 1;
                s.model.delay_ms_total += p.choice.delay_ms;
                s.served.decisions += 1;
                s.served.delay_ms_total += d.delay_ms;
                let same = crate::bayes::bucket_of(p.choice.delay_ms) == crate::bayes::bucket_of(d.delay_ms);
                s.agreements += u64::from(same);
            }
        }
        if let Some(job) = &f.job_id {
            let pending = Pending {
                arm: arm.map(|a| (a, d.estimated_success)),
                shadow: shadow.map(|(_, at)| (at, d.estimated_success)),
            };
            self.pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .put((job.clone(), f.attempt_number + 1), pending);
        }
    }

    /// A retry's outcome: score the predictions made for it.
    pub fn outcome(&self, job_id: &str, attempt_number: u32, success: bool) {
        let pending = {
            let mut p = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            if p.is_empty() {
                return;
            }
            p.pop(&(job_id.to_string(), attempt_number))
        };
        let Some(pending) = pending else { return };
        let mut reg = self.registry();
        let c = &mut reg.comparison;
        match pending.arm {
            Some((Arm::Ml, p)) => c.ml.outcome(p, success),
            Some((Arm::Bayesian, p)) => c.bayesian.outcome(p, success),
            None => {}
        }
        if let Some((model, served)) = pending.shadow {
            c.shadow.model.outcome(model, success);
            c.shadow.served.outcome(served, success);
        }
    }
}

fn predict(
    model: &Arc<Loaded>,
    f: &Features,
    now_ms: u64,
    retries_left: u32,
    cfg: &BayesConfig,
) -> std::result::Result<Prediction, String> {
    let n = model.candidates.len();
    let mut rows = Vec::with_capacity(n * model.spec.width());
    model.spec.push_row(f, model.candidates[0], now_ms, &mut rows);
    for &delay in &model.candidates[1..] {
        rows.extend_from_within(0..model.spec.width());
        let start = rows.len() - model.spec.width();
        model.spec.set_delay(&mut rows[start..], f, delay);
    }
    let mut probabilities = Vec::with_capacity(n);
    model.scorer.predict(&rows, n, &mut probabilities).map_err(|e| {
        format!(
            "model {} {} failed: {}",
            model.sidecar.name,
            model.sidecar.version,
            e.to_string().trim_start_matches("model error: ")
        )
    })?;
    let choice = plan::choose(&model.candidates, &probabilities, retries_left, cfg);
    let confidence = model.sidecar.confidence(choice.p_success);
    Ok(Prediction { model: Arc::clone(model), choice, confidence, probabilities })
}

impl Registry {
    fn info(&self, i: usize) -> ModelInfo {
        let v = &self.versions[i];
        let d = &self.deployment;
        let version = &v.sidecar.version;
        let state = if d.serving.as_ref() == Some(version) {
            if d.canary_percent >= 100.0 {
                "serving"
            } else {
                "canary"
            }
        } else if d.shadow.as_ref() == Some(version) {
            "shadow"
        } else {
            "registered"
        };
        ModelInfo {
            version: version.clone(),
            name: v.sidecar.name.clone(),
            model_type: v.sidecar.model_type.clone(),
            features: v.sidecar.features.iter().map(|c| c.name.clone()).collect(),
            metrics: v.sidecar.metrics.clone(),
            registered_at: v.registered_at.clone(),
            size_bytes: v.onnx.len() as u64,
            state: state.into(),
        }
    }
}
