//! ONNX Runtime through `ort` with `load-dynamic`: the shared library is found at run
//! time, never downloaded at build time.
//!
//! Where it is looked for, first found wins (an explicit path is final: if it does not
//! load, nothing else is tried, so a misconfiguration is reported, not papered over):
//! 1. the engine's `ml.runtime_path` (config) or [`EngineBuilder::ml_runtime`](crate::EngineBuilder::ml_runtime);
//! 2. `ORT_DYLIB_PATH`;
//! 3. an installed `onnxruntime` Python wheel (`site-packages/onnxruntime/capi/`): the
//!    active `VIRTUAL_ENV`, a `.venv` beside the working directory or the executable (or
//!    any parent), the Python installation running the process, the user's and the
//!    system's site-packages;
//! 4. an installed `onnxruntime-node` package (`node_modules/onnxruntime-node/bin/…`),
//!    beside the working directory or the executable (or any parent, or its `node/`).
//!
//! ONNX Runtime is process-wide: it is loaded once, by the first engine that needs it,
//! and the outcome (the library, or why there is none) is kept for the process.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::environment::Environment;
use ort::session::Session;
use ort::value::{TensorElementType, TensorRef, ValueType};

use crate::error::{Error, Result};

/// The loaded runtime.
pub struct Runtime {
    env: Environment,
    pub library: PathBuf,
}

static RUNTIME: OnceLock<std::result::Result<Runtime, String>> = OnceLock::new();

/// The process's ONNX Runtime, loading it on first use; `Err` says why there is none.
pub fn runtime(explicit: Option<&Path>) -> std::result::Result<&'static Runtime, String> {
    RUNTIME.get_or_init(|| load(explicit)).as_ref().map_err(Clone::clone)
}

/// The runtime if it was loaded already (never loads).
pub fn loaded() -> Option<std::result::Result<&'static Runtime, String>> {
    RUNTIME.get().map(|r| r.as_ref().map_err(Clone::clone))
}

fn load(explicit: Option<&Path>) -> std::result::Result<Runtime, String> {
    let (library, how) = match (explicit, std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty())) {
        (Some(path), _) => (path.to_path_buf(), "ml.runtime_path"),
        (None, Some(path)) => (PathBuf::from(path), "ORT_DYLIB_PATH"),
        (None, None) => match discover() {
            Some(path) => (path, "found installed"),
            None => {
                return Err("ONNX Runtime library not found: set ORT_DYLIB_PATH, or install the \
                     onnxruntime Python wheel (pip install onnxruntime) or onnxruntime-node"
                    .into())
            }
        },
    };
    if !library.is_file() {
        return Err(format!("ONNX Runtime library {} ({how}) does not exist", library.display()));
    }
    let env = ort::init_from(&library)
        .map_err(|e| format!("ONNX Runtime library {} ({how}) did not load: {e}", library.display()))?
        .with_name("smartretry")
        .build()
        .map_err(|e| format!("ONNX Runtime {} did not start: {e}", library.display()))?;
    Ok(Runtime { env, library })
}

/// Installed copies of the library, in the order of the module's list.
fn discover() -> Option<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    for start in [std::env::current_dir().ok(), std::env::current_exe().ok()].into_iter().flatten() {
        roots.extend(start.ancestors().map(Path::to_path_buf));
    }
    let mut wheel_dirs: Vec<PathBuf> = Vec::new();
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
        wheel_dirs.extend(site_packages(&PathBuf::from(venv)));
    }
    for root in &roots {
        // A project's .venv, and the Python installation running this process (a venv's
        // bin/python, /usr/bin/python3: the prefix is an ancestor of the executable).
        wheel_dirs.extend(site_packages(&root.join(".venv")));
        wheel_dirs.extend(site_packages(root));
    }
    if let Some(home) = std::env::var_os("HOME") {
        wheel_dirs.extend(site_packages(&PathBuf::from(home).join(".local")));
    }
    for prefix in ["/usr/local", "/usr"] {
        wheel_dirs.extend(site_packages(Path::new(prefix)));
    }
    wheel_dirs.push(PathBuf::from("/usr/lib/python3/dist-packages"));
    let wheels = wheel_dirs.into_iter().map(|d| d.join("onnxruntime").join("capi"));
    let node = roots.iter().flat_map(|root| {
        [root.join("node_modules"), root.join("node").join("node_modules")]
            .map(|m| m.join("onnxruntime-node").join("bin"))
            .into_iter()
            .flat_map(node_lib_dirs)
    });
    wheels.chain(node).find_map(|dir| library_in(&dir))
}

/// `<prefix>/lib/python3.*/{site,dist}-packages`.
fn site_packages(prefix: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(prefix.join("lib")) else { return Vec::new() };
    let mut dirs = Vec::new();
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with("python3") {
            dirs.push(entry.path().join("site-packages"));
            dirs.push(entry.path().join("dist-packages"));
        }
    }
    dirs
}

/// `bin/napi-v*/<os>/<arch>/` of onnxruntime-node.
fn node_lib_dirs(bin: PathBuf) -> Vec<PathBuf> {
    let (os, arch) = (std::env::consts::OS, node_arch());
    let Ok(entries) = std::fs::read_dir(&bin) else { return Vec::new() };
    let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path().join(os).join(arch)).collect();
    dirs.sort();
    dirs.reverse(); // the newest N-API version first
    dirs
}

fn node_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// `libonnxruntime.so.1.32.0`, `libonnxruntime.so.1`, `libonnxruntime.dylib`,
/// `onnxruntime.dll`: the main library, not its provider plug-ins.
fn library_in(dir: &Path) -> Option<PathBuf> {
    let stem = format!("{}onnxruntime", std::env::consts::DLL_PREFIX);
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            name.strip_prefix(&stem).is_some_and(|rest| {
                rest.starts_with(std::env::consts::DLL_SUFFIX)
                    || (cfg!(target_os = "macos") && rest.starts_with('.') && rest.ends_with(".dylib"))
            })
        })
        .collect();
    found.sort();
    found.pop()
}

/// A loaded model, ready to score rows. One inference at a time per session (ONNX
/// Runtime sessions are not safe to run concurrently); each run is a few µs.
pub struct Scorer {
    session: Mutex<Session>,
    width: usize,
    output: String,
}

impl std::fmt::Debug for Scorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scorer").field("width", &self.width).field("output", &self.output).finish()
    }
}

impl Scorer {
    /// Load `bytes` and check its input and output against the contract: one float input
    /// `[N, width]`, a float probability output `[N, 2]` or `[N, 1]` (named `output`, else
    /// `probabilities`, else the last output). `what` names the model in errors.
    pub fn load(
        runtime: &Runtime,
        bytes: &[u8],
        width: usize,
        output: Option<&str>,
        what: &str,
    ) -> Result<Scorer> {
        let model_err = |m: String| Error::Model(format!("{what}: {m}"));
        let session = Session::builder(&runtime.env)
            .and_then(|b| Ok(b.with_intra_threads(1)?))
            .and_then(|mut b| b.commit_from_memory(bytes))
            .map_err(|e| model_err(format!("not a loadable ONNX model: {e}")))?;
        let inputs = session.inputs();
        if inputs.len() != 1 {
            let names: Vec<&str> = inputs.iter().map(|i| i.name()).collect();
            return Err(model_err(format!(
                "has {} inputs ({}); the contract is one float input [N, {width}]",
                names.len(),
                names.join(", ")
            )));
        }
        let input = &inputs[0];
        match input.dtype() {
            ValueType::Tensor { ty: TensorElementType::Float32, shape, .. } if shape.len() == 2 => {
                if shape[1] >= 0 && shape[1] as usize != width {
                    return Err(model_err(format!(
                        "input {:?} has {} columns, but the sidecar's features make {width}",
                        input.name(),
                        shape[1]
                    )));
                }
            }
            other => {
                return Err(model_err(format!(
                    "input {:?} is {other}; the contract is a float tensor [N, {width}]",
                    input.name()
                )))
            }
        }
        let outputs = session.outputs();
        let chosen = match output {
            Some(name) => outputs.iter().find(|o| o.name() == name).ok_or_else(|| {
                model_err(format!(
                    "has no output {name:?} (outputs: {})",
                    outputs.iter().map(|o| o.name()).collect::<Vec<_>>().join(", ")
                ))
            })?,
            None => outputs
                .iter()
                .find(|o| o.name() == "probabilities")
                .or(outputs.last())
                .ok_or_else(|| model_err("has no outputs".into()))?,
        };
        let output_columns = match chosen.dtype() {
            ValueType::Tensor { ty: TensorElementType::Float32, shape, .. }
                if shape.len() == 2 && matches!(shape[1], 1 | 2 | -1) =>
            {
                shape[1]
            }
            other => {
                return Err(model_err(format!(
                    "output {:?} is {other}; the contract is float probabilities [N, 2] or [N, 1] \
                     (export scikit-learn models with zipmap disabled)",
                    chosen.name()
                )))
            }
        };
        let output = chosen.name().to_string();
        let scorer = Scorer { session: Mutex::new(session), width, output };
        // Learn the output width from a trial row (symbolic columns), proving the model runs.
        let mut probe = Vec::new();
        let columns = scorer.run(&vec![0.0; width], 1, &mut probe).map_err(|e| {
            model_err(format!("failed on a trial row: {}", e.to_string().trim_start_matches("model error: ")))
        })?;
        if output_columns > 0 && columns != output_columns as usize {
            return Err(model_err(format!("output has {columns} columns, declared {output_columns}")));
        }
        Ok(scorer)
    }

    /// P(success) for `n` rows of `width` floats, into `out` (cleared first).
    pub fn predict(&self, rows: &[f32], n: usize, out: &mut Vec<f32>) -> Result<()> {
        let mut raw = Vec::new();
        let columns = self.run(rows, n, &mut raw)?;
        out.clear();
        out.extend(raw.chunks(columns.max(1)).map(|r| r[columns - 1]));
        if out.len() != n {
            return Err(Error::Model(format!("returned {} probabilities for {n} rows", out.len())));
        }
        if let Some(bad) = out.iter().find(|p| !(0.0..=1.0).contains(*p)) {
            return Err(Error::Model(format!("returned {bad}, not a probability")));
        }
        Ok(())
    }

    /// Run `n` rows; the raw output goes to `out`; returns its number of columns.
    fn run(&self, rows: &[f32], n: usize, out: &mut Vec<f32>) -> Result<usize> {
        let fail = |e: ort::Error| Error::Model(format!("inference failed: {e}"));
        let input = TensorRef::from_array_view(([n, self.width], rows)).map_err(fail)?;
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let outputs = session.run(ort::inputs![input]).map_err(fail)?;
        let value = outputs
            .get(&self.output)
            .ok_or_else(|| Error::Model(format!("output {:?} missing from the run", self.output)))?;
        let (shape, data) = value.try_extract_tensor::<f32>().map_err(fail)?;
        let columns = if shape.len() == 2 { shape[1].max(0) as usize } else { 1 };
        if shape.first().copied() != Some(n as i64) || columns == 0 || !(1..=2).contains(&columns) {
            return Err(Error::Model(format!("output shape {shape:?} does not match {n} rows")));
        }
        out.clear();
        out.extend_from_slice(data);
        Ok(columns)
    }
}
