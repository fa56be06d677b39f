#!/usr/bin/env bash
# The repository's Python environment, .venv (created if missing; safe to run again):
# the build and test tools of the Python package (requests and aiohttp: the HTTP clients
# the tests call a real local server with), and the ML tier's stack — onnxruntime
# (its shared library is what the Rust ML tests and the engine load), scikit-learn and
# skl2onnx (the trainer and the test models). Needs only python3 >= 3.9.
# Prints the ONNX Runtime library it provides as its last line.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
if [ ! -x "$VENV/bin/python" ]; then
    echo "::: creating $VENV" >&2
    "$PYTHON" -m venv "$VENV"
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
echo "::: installing build, test and ML tools into $VENV" >&2
"$VENV/bin/python" -m pip install -q \
    "maturin>=1.9.4,<2" "pytest>=8" "pytest-asyncio>=0.23" "mypy>=1.10" "requests>=2.31" "aiohttp>=3.9" \
    "onnxruntime>=1.20" "scikit-learn>=1.5" "skl2onnx>=1.17" >&2

lib=$(ls "$VENV"/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* 2>/dev/null | grep -v providers | head -n 1 || true)
[ -n "$lib" ] || { echo "onnxruntime installed no libonnxruntime.so.* in $VENV" >&2; exit 1; }
realpath "$lib"
