#!/usr/bin/env bash
# Benchmarks the npm package against p-retry 7.1 and cockatiel 3.2, side by side in
# one process (node/bench/bench.mjs). The two peers are installed into node/bench only
# (`--no-save`): they are never dependencies of the package or of its tests.
# BENCH_ROUNDS=N changes the number of rounds (default 7; each figure is a median);
# BENCH_STAT=min reports the fastest round instead (on a busy machine).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root/node"
npm install --no-audit --no-fund
npm run build
cd bench
npm install --no-save --no-audit --no-fund p-retry@7.1 cockatiel@3.2
node bench.mjs
