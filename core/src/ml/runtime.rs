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

use super::contract::{check_contract, Infer, LoadError, Opened, Port};
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

/// A model in an ONNX Runtime session. One inference at a time per session (ONNX
/// Runtime sessions are not safe to run concurrently); each run is a few µs.
struct OrtModel {
    session: Mutex<Session>,
    width: usize,
    output: String,
}

/// Open `bytes` in a session with one intra-op thread and check it against the contract
/// (see [`check_contract`]).
pub(crate) fn open(
    runtime: &Runtime,
    bytes: &[u8],
    width: usize,
    output: Option<&str>,
    what: &str,
) -> Opened {
    let session = Session::builder(&runtime.env)
        .and_then(|b| Ok(b.with_intra_threads(1)?))
        .and_then(|mut b| b.commit_from_memory(bytes))
        .map_err(|e| LoadError::Unloadable(format!("{what}: not a loadable ONNX model: {e}")))?;
    let port = |name: &str, dtype: &ValueType| Port {
        name: name.to_string(),
        float: matches!(dtype, ValueType::Tensor { ty: TensorElementType::Float32, .. }),
        dims: match dtype {
            ValueType::Tensor { shape, .. } => Some(shape.iter().map(|&d| usize::try_from(d).ok()).collect()),
            _ => None,
        },
        kind: dtype.to_string(),
    };
    let inputs: Vec<Port> = session.inputs().iter().map(|i| port(i.name(), i.dtype())).collect();
    let outputs: Vec<Port> = session.outputs().iter().map(|o| port(o.name(), o.dtype())).collect();
    let (chosen, declared) = check_contract(&inputs, &outputs, width, output, what)?;
    let output = outputs[chosen].name.clone();
    Ok((Box::new(OrtModel { session: Mutex::new(session), width, output }), declared))
}

impl Infer for OrtModel {
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
        if shape.first().copied() != Some(n as i64) {
            return Err(Error::Model(format!("output shape {shape:?} does not match {n} rows")));
        }
        out.clear();
        out.extend_from_slice(data);
        Ok(columns)
    }
}
