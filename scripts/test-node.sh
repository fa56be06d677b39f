#!/usr/bin/env bash
# Builds and tests the npm package `smartretry` (node/) from a fresh clone.
# Needs node/npm and cargo only; safe to run again. Steps:
#   1. npm install in node/ from the committed package-lock.json (dev dependencies
#      only: @napi-rs/cli, typescript, @types/node). Not `npm ci`: the registry here
#      does not serve the other platforms' optional packages of @napi-rs/cli's
#      dependencies, so the lock cannot list them and `npm ci` would refuse it.
#   2. napi build --platform --release (+ tsc), then fail if the generated
#      native/index.d.ts or native/index.js differ from the committed ones
#   3. typecheck (the TS layer, the type tests, the shape lists)
#   4. node --test tests/ (unit tests, shared vectors, worker threads, ESM + CJS)
#   5. the runnable example against a real local HTTP server
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/node"

command -v node >/dev/null || { echo "node not found: install Node.js 20+" >&2; exit 1; }
command -v cargo >/dev/null || { echo "cargo not found: install Rust from https://rustup.rs" >&2; exit 1; }

echo "== npm install (node/)"
npm install --no-audit --no-fund

echo "== build (napi build --platform --release, tsc)"
generated="$(mktemp -d)"
trap 'rm -rf "$generated"' EXIT
for f in index.d.ts index.js; do
  [ -f "native/$f" ] || { echo "node/native/$f is missing: it is generated and committed" >&2; exit 1; }
  cp "native/$f" "$generated/$f"
done
npm run build

echo "== generated bindings are up to date"
stale=0
for f in index.d.ts index.js; do
  if ! diff -u "$generated/$f" "native/$f"; then
    echo "node/native/$f is stale: run 'npm run build' in node/ and commit it" >&2
    stale=1
  fi
done
[ "$stale" = 0 ]

echo "== typecheck"
npm run typecheck

echo "== node --test"
npm test

echo "== example: examples/node/http-retry.mjs against a local HTTP server"
cd "$root/examples/node"
npm install --no-audit --no-fund
node http-retry.mjs
