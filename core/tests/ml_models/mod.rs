//! The ML tests' models, made by `tests/ml/make_models.py` (scikit-learn → skl2onnx, and
//! onnx.helper) with the repository's `.venv` Python, or `SMARTRETRY_PYTHON`.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Make the models in `out`; `Err` says why they could not be made.
pub fn make_models(out: &Path) -> Result<PathBuf, String> {
    let python = std::env::var_os("SMARTRETRY_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join(".venv/bin/python"));
    if !python.exists() {
        return Err(format!("no Python at {} (scripts/venv.sh makes it)", python.display()));
    }
    let run = Command::new(&python)
        .arg(repo().join("tests/ml/make_models.py"))
        .arg(out)
        .output()
        .map_err(|e| format!("{}: {e}", python.display()))?;
    if !run.status.success() {
        return Err(format!("make_models.py failed: {}", String::from_utf8_lossy(&run.stderr)));
    }
    Ok(out.to_path_buf())
}

/// A missing piece: fails the test when `make test` requires the ML tier
/// (`SMARTRETRY_REQUIRE_ML=1`), else the test skips, saying why.
pub fn skip(why: &str) {
    if std::env::var("SMARTRETRY_REQUIRE_ML").is_ok_and(|v| v == "1") {
        panic!("SMARTRETRY_REQUIRE_ML=1 but the ML tier cannot be tested: {why}");
    }
    eprintln!("skipping: {why}");
}
