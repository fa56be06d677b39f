#!/usr/bin/env bash
# The Go SDK's costs side by side with cenkalti/backoff in one process, against the shipped
# (release, stripped) static library (bindings/go/bench; numbers in docs/performance.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/dist.sh go >/dev/null
cd bindings/go/bench
SMARTRETRY_BENCH=1 go test -count=1 -run '^TestCompare$' -v . | grep -v '^=== RUN\|^--- \|^PASS\|^ok'
