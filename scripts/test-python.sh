#!/usr/bin/env bash
# The Python package: install the release wheel of `make dist` into .venv (scripts/venv.sh;
# scripts/dist.sh python builds it unless scripts/test.sh already ran `make dist`), then
# mypy --strict on the examples and the package, the stub check of the native module, and pytest.
# Needs only python3 (>= 3.9) and cargo; safe to run again. Ends with pytest's summary.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/venv.sh >/dev/null
PY=.venv/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK=1

[ -n "${SMARTRETRY_DIST_DONE:-}" ] || scripts/dist.sh python
echo "::: installing dist/python's wheel"
"$PY" -m pip install -q --force-reinstall --no-deps dist/python/smartretry-*.whl

echo "::: mypy --strict examples/python python/smartretry"
"$PY" -m mypy --strict examples/python python/smartretry

echo "::: stubtest smartretry._native"
"$PY" -m mypy.stubtest smartretry._native

echo "::: pytest python/tests"
"$PY" -m pytest python/tests -q -p no:cacheprovider
