#!/usr/bin/env bash
# Builds and tests the npm package `smartretry` (node/) from a fresh clone.
# Needs node/npm and cargo only; safe to run again. Steps:
#   1. scripts/dist.sh node (unless scripts/test.sh already ran `make dist`): npm install
#      in node/ from the committed package-lock.json (dev dependencies only), napi build
#      --platform --release (+ tsc), failing if the generated native/index.d.ts or
#      native/index.js differ from the committed ones, and npm pack of the main and the
#      linux-x64-gnu packages. Not `npm ci`: the registry here does not serve the other
#      platforms' optional packages of @napi-rs/cli's dependencies, so the lock cannot
#      list them and `npm ci` would refuse it.
#   2. typecheck (the TS layer, the type tests, the shape lists)
#   3. node --test tests/ (unit tests, shared vectors, worker threads, ESM + CJS)
#   4. the runnable example against a real local HTTP server
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/node"

command -v node >/dev/null || { echo "node not found: install Node.js 20+" >&2; exit 1; }
command -v cargo >/dev/null || { echo "cargo not found: install Rust from https://rustup.rs" >&2; exit 1; }

[ -n "${SMARTRETRY_DIST_DONE:-}" ] || "$root/scripts/dist.sh" node

echo "== typecheck"
npm run typecheck

echo "== node --test"
npm test

echo "== example: examples/node/http-retry.mjs against a local HTTP server"
cd "$root/examples/node"
npm install --no-audit --no-fund
node http-retry.mjs
