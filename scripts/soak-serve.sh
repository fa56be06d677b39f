#!/usr/bin/env bash
# The HTTP server under load, as docs/performance.md reports it: three 10 s runs and one
# 60 s soak of `smartretry loadtest` (16 connections; the generator shares the machine),
# each preceded by the load average, and the soak's server memory second by second.
# Not part of `make test`: a soak measures, it does not pass or fail. The machine should
# be otherwise idle (load average near 0): every core another build takes is one the
# server and the generator do not have.
#   scripts/soak-serve.sh [path/to/smartretry]   (default: builds target/release/smartretry)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-}
if [ -z "$bin" ]; then
    cargo build --release -p smartretry-cli >&2
    bin=target/release/smartretry
fi
unset RETRY_API_TOKEN
for i in 1 2 3; do
    echo "== 10 s run $i; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    "$bin" loadtest --duration 10s --connections 16
done
echo "== 60 s soak; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
"$bin" loadtest --duration 60s --connections 16 --json | tee /dev/stderr | tail -n 1 |
    python3 -c 'import json, sys; r = json.load(sys.stdin); print("server RSS by second (MB):", " ".join(f"{k / 1024:.1f}" for k in r["rss_kb"]))'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
