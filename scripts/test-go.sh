#!/usr/bin/env bash
# The Go module (bindings/go) from a fresh clone. Needs cargo, Go 1.24+ and a C compiler.
#   1. the shipped static library: scripts/dist.sh go (release, stripped of debug info,
#      into the module's deps/linux_amd64) unless scripts/test.sh already ran `make dist`.
#      Its C header (bindings/go/smartretry.h) is checked against the Rust source by the
#      uniffi crate's header_is_current test.
#   2. gofmt, go vet, and the build error without cgo
#   3. go test -v: Do(ctx, …), the engine's methods and errors, the shared vectors
#   4. the runnable example (examples/go) against a real local HTTP server
# The module has no third-party Go dependencies: nothing is downloaded. Safe to run again.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
command -v go >/dev/null || { echo "go not found: install Go 1.24+ (https://go.dev/dl)" >&2; exit 1; }

[ -n "${SMARTRETRY_DIST_DONE:-}" ] || scripts/dist.sh go

cd bindings/go
echo "== gofmt, go vet"
unformatted="$(gofmt -l . ../../examples/go)"
[ -z "$unformatted" ] || { echo "not gofmt'ed: $unformatted" >&2; exit 1; }
go vet ./...

echo "== without cgo (as on a platform the module ships no library for) the build names the fix"
if out=$(CGO_ENABLED=0 go build . 2>&1); then echo "built without cgo?" >&2; exit 1; fi
grep -q smartretry_use_lib <<<"$out" || { echo "$out" >&2; exit 1; }

echo "== go test -v (bindings/go)"
go test -count=1 -v ./...

echo "== example: examples/go against a local HTTP server"
cd ../../examples/go
go vet ./...
go run .
