#!/usr/bin/env bash
# The Python package: build and install the wheel into .venv (scripts/venv.sh), then
# mypy --strict on the examples and the package, the stub check of the native module, and pytest.
# Needs only python3 (>= 3.9) and cargo; safe to run again. Ends with pytest's summary.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/venv.sh >/dev/null
PY=.venv/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK=1

echo "::: building and installing ./python (release wheel, shared cargo target/)"
"$PY" -m pip install -q --force-reinstall --no-deps ./python

echo "::: mypy --strict examples/python python/smartretry"
"$PY" -m mypy --strict examples/python python/smartretry

echo "::: stubtest smartretry._native"
"$PY" -m mypy.stubtest smartretry._native

echo "::: pytest python/tests"
"$PY" -m pytest python/tests -q -p no:cacheprovider
