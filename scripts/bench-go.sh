#!/usr/bin/env bash
# The Go benchmarks against the release build of the Rust library (docs/performance.md).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --release -p smartretry-uniffi
cd bindings/go
go test -tags smartretry_release -run '^$' -bench . -benchtime "${BENCHTIME:-2s}" -count "${COUNT:-3}" ./...
