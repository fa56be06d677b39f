#!/usr/bin/env bash
# Overhead of @smart_retry next to tenacity, stamina and backoff (installed into .venv for
# this only), in one process: success path and per failure. See python/benchmarks/bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import smartretry" 2>/dev/null; then
    scripts/test-python.sh >/dev/null
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
.venv/bin/python -m pip install -q tenacity stamina backoff
.venv/bin/python python/benchmarks/bench.py "$@"
