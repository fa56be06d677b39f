//! Inference backends behind one seam: ONNX Runtime through `ort` (feature `onnx`, on by
//! default, the library loaded at run time) and tract, a pure-Rust ONNX runtime (feature
//! `tract`, off by default: a cold build costs ~10 minutes of CPU).
//!
//! Each backend opens the model bytes and reports its inputs and outputs; the contract
//! (one float input `[N, width]`, a float probability output `[N, 2]` or `[N, 1]`) is
//! checked here, once for both, and so are the trial row and the probabilities. A backend
//! only runs rows.
//!
//! [`MlBackend::Auto`] tries the backends built in, in [`PREFERRED`] order, and falls
//! back to the next when one cannot load a model (an operator it lacks, no runtime
//! library); a model that loads but breaks the contract is refused, not retried.

// A build with neither backend keeps the seam (and says why no model loads).
#![cfg_attr(not(any(feature = "onnx", feature = "tract")), allow(dead_code))]

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

use super::contract::{Infer, LoadError, Opened};

/// Which inference backend serves models (`Config.ml_backend`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MlBackend {
    /// Every backend built in, [`PREFERRED`] first; the next when one cannot load a model.
    #[default]
    Auto,
    /// ONNX Runtime only.
    Ort,
    /// tract only (needs the `tract` feature).
    Tract,
}

impl MlBackend {
    pub fn is_auto(&self) -> bool {
        *self == MlBackend::Auto
    }
}

/// The backends [`MlBackend::Auto`] tries, in order, chosen by the numbers of
/// `cargo bench -p smartretry --bench ml --features tract` (docs/performance.md): tract
/// runs a logistic regression's batch ~1.5× faster, but its tree ensembles take
/// milliseconds where ONNX Runtime takes ~15 µs; so ONNX Runtime first, and tract when
/// there is no ONNX Runtime library or the model is one ONNX Runtime cannot load.
pub const PREFERRED: [MlBackend; 2] = [MlBackend::Ort, MlBackend::Tract];

/// A loaded model, ready to score rows, whichever backend runs it.
pub struct Scorer {
    model: Box<dyn Infer>,
    width: usize,
    backend: MlBackend,
}

impl std::fmt::Debug for Scorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scorer").field("width", &self.width).field("backend", &self.backend).finish()
    }
}

impl Scorer {
    /// Load `bytes` with `backend` (for [`MlBackend::Auto`], the first built-in backend
    /// that can) and check it against the contract for `width` columns, the probability
    /// output named `output` (see `contract::check_contract`). `runtime_path`: the ONNX Runtime
    /// library, as [`crate::EngineBuilder::ml_runtime`]. `what` names the model in errors.
    pub fn load(
        backend: MlBackend,
        runtime_path: Option<&Path>,
        bytes: &[u8],
        width: usize,
        output: Option<&str>,
        what: &str,
    ) -> Result<Scorer> {
        let mut unloadable = Vec::new();
        for kind in order(backend) {
            let opened = match kind {
                MlBackend::Ort => open_ort(runtime_path, bytes, width, output, what),
                _ => open_tract(bytes, width, output, what),
            };
            match opened.and_then(|(model, declared)| Ok(Scorer::probed(model, width, kind, declared, what)?))
            {
                Ok(scorer) => return Ok(scorer),
                Err(LoadError::Refused(e)) => return Err(e),
                Err(LoadError::Unloadable(why)) => unloadable.push(why),
            }
        }
        Err(Error::Model(match unloadable.as_slice() {
            [only] => only.clone(),
            all => format!("{what}: no backend could load it: {}", all.join("; ")),
        }))
    }

    /// Run a trial row (proving the model runs) and compare its width with the declared one.
    fn probed(
        model: Box<dyn Infer>,
        width: usize,
        backend: MlBackend,
        declared: Option<usize>,
        what: &str,
    ) -> Result<Scorer> {
        let model_err = |m: String| Error::Model(format!("{what}: {m}"));
        let scorer = Scorer { model, width, backend };
        let columns = scorer.run(&vec![0.0; width], 1, &mut Vec::new()).map_err(|e| {
            model_err(format!("failed on a trial row: {}", e.to_string().trim_start_matches("model error: ")))
        })?;
        if let Some(declared) = declared.filter(|&d| d != columns) {
            return Err(model_err(format!("output has {columns} columns, declared {declared}")));
        }
        Ok(scorer)
    }

    /// Run `n` rows; the raw output into `raw`; returns its number of columns (1 or 2).
    fn run(&self, rows: &[f32], n: usize, raw: &mut Vec<f32>) -> Result<usize> {
        if rows.len() != n * self.width {
            return Err(Error::Model(format!("{} floats are not {n} rows of {}", rows.len(), self.width)));
        }
        let columns = self.model.run(rows, n, raw)?;
        if !(1..=2).contains(&columns) || raw.len() != n * columns {
            return Err(Error::Model(format!(
                "output of {} values in {columns} columns for {n} rows",
                raw.len()
            )));
        }
        Ok(columns)
    }

    /// The backend that runs this model ([`MlBackend::Ort`] or [`MlBackend::Tract`]).
    pub fn backend(&self) -> MlBackend {
        self.backend
    }

    /// P(success) for `n` rows of `width` floats, into `out` (cleared first).
    pub fn predict(&self, rows: &[f32], n: usize, out: &mut Vec<f32>) -> Result<()> {
        let mut raw = Vec::new();
        let columns = self.run(rows, n, &mut raw)?;
        out.clear();
        out.extend(raw.chunks(columns).map(|r| r[columns - 1]));
        if let Some(bad) = out.iter().find(|p| !(0.0..=1.0).contains(*p)) {
            return Err(Error::Model(format!("returned {bad}, not a probability")));
        }
        Ok(())
    }
}

/// The backends to try for `backend`: Auto's are those built in (ONNX Runtime, to say
/// why, when there is none).
fn order(backend: MlBackend) -> Vec<MlBackend> {
    match backend {
        MlBackend::Auto => {
            let built: Vec<MlBackend> = PREFERRED.into_iter().filter(|&k| built_in(k)).collect();
            if built.is_empty() {
                vec![MlBackend::Ort]
            } else {
                built
            }
        }
        one => vec![one],
    }
}

/// Whether this build has `backend`.
pub fn built_in(backend: MlBackend) -> bool {
    match backend {
        MlBackend::Auto => true,
        MlBackend::Ort => cfg!(feature = "onnx"),
        MlBackend::Tract => cfg!(feature = "tract"),
    }
}

/// The backend's runtime, or why there is none: ONNX Runtime's library path (loading it
/// on first call), tract's version.
pub(crate) fn runtime_status(
    backend: MlBackend,
    runtime_path: Option<&Path>,
) -> std::result::Result<String, String> {
    match backend {
        MlBackend::Auto => {
            let statuses: Vec<_> =
                order(backend).into_iter().map(|k| runtime_status(k, runtime_path)).collect();
            let available: Vec<String> = statuses.iter().filter_map(|s| s.clone().ok()).collect();
            match available.is_empty() {
                true => Err(statuses.into_iter().filter_map(|s| s.err()).collect::<Vec<_>>().join("; ")),
                false => Ok(available.join(", then ")),
            }
        }
        #[cfg(feature = "onnx")]
        MlBackend::Ort => super::runtime::runtime(runtime_path).map(|r| r.library.display().to_string()),
        #[cfg(not(feature = "onnx"))]
        MlBackend::Ort => {
            let _ = runtime_path;
            Err("this build has no ONNX support (the `onnx` feature of the smartretry crate is off)".into())
        }
        #[cfg(feature = "tract")]
        MlBackend::Tract => Ok(super::tract::DESCRIPTION.into()),
        #[cfg(not(feature = "tract"))]
        MlBackend::Tract => {
            Err("this build has no tract backend (the `tract` feature of the smartretry crate is off)".into())
        }
    }
}

#[cfg(feature = "onnx")]
fn open_ort(
    runtime_path: Option<&Path>,
    bytes: &[u8],
    width: usize,
    output: Option<&str>,
    what: &str,
) -> Opened {
    let rt = super::runtime::runtime(runtime_path)
        .map_err(|why| LoadError::Unloadable(format!("ML tier unavailable: {why}")))?;
    super::runtime::open(rt, bytes, width, output, what)
}

#[cfg(not(feature = "onnx"))]
fn open_ort(runtime_path: Option<&Path>, _: &[u8], _: usize, _: Option<&str>, _: &str) -> Opened {
    let why = runtime_status(MlBackend::Ort, runtime_path).err().unwrap_or_default();
    Err(LoadError::Unloadable(format!("ML tier unavailable: {why}")))
}

#[cfg(feature = "tract")]
fn open_tract(bytes: &[u8], width: usize, output: Option<&str>, what: &str) -> Opened {
    super::tract::open(bytes, width, output, what)
}

#[cfg(not(feature = "tract"))]
fn open_tract(_: &[u8], _: usize, _: Option<&str>, _: &str) -> Opened {
    let why = runtime_status(MlBackend::Tract, None).err().unwrap_or_default();
    Err(LoadError::Unloadable(format!("ML tier unavailable: {why}")))
}
