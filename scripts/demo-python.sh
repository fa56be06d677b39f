#!/usr/bin/env bash
# The Python demo: a flaky payment API on 127.0.0.1 (503s, 429 + Retry-After) and a
# @smart_retry client whose retry delays move from the rules' backoff to learned ones.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import smartretry" 2>/dev/null; then
    scripts/test-python.sh >/dev/null
fi
.venv/bin/python examples/python/quickstart.py
echo
.venv/bin/python examples/python/flaky_payments.py "$@"
