#!/usr/bin/env bash
# Every test suite of the repository, then one closing line: "total: N passed, N failed".
# Each suite's own summary stays in the log; suites are added below as they land.
set -uo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0

run() {
    echo "::: $*"
    "$@" 2>&1 | tee -a "$log"
    local rc=${PIPESTATUS[0]}
    [ "$rc" -eq 0 ] || { echo "::: FAILED ($rc): $*"; status=1; }
}

# The Python environment first: the ML tier's tests load ONNX Runtime from its wheel and
# make their models with scikit-learn. Under this script they must run, not skip.
echo "::: scripts/venv.sh"
if ort_lib=$(scripts/venv.sh); then
    export ORT_DYLIB_PATH="${ORT_DYLIB_PATH:-$ort_lib}"
    echo "::: ORT_DYLIB_PATH=$ORT_DYLIB_PATH"
else
    echo "::: FAILED: scripts/venv.sh"; status=1
fi
export SMARTRETRY_REQUIRE_ML=1

# The TUI test drives `smartretry tui` in a real tmux.
if ! command -v tmux >/dev/null; then
    echo "::: installing tmux (the TUI test drives the TUI in it)"
    if [ "$(id -u)" -eq 0 ]; then apt-get install -y -q tmux || { apt-get update -q && apt-get install -y -q tmux; }
    else sudo apt-get install -y -q tmux || { sudo apt-get update -q && sudo apt-get install -y -q tmux; }; fi
fi

# The Redis store's tests start their own redis-server: install it when missing.
scripts/ensure-redis.sh || { echo "::: FAILED: could not install redis-server"; status=1; }
# `make dist` first: the release builds of every SDK, once. The language suites test these
# same artefacts (they skip their own dist step), and test-install.sh installs them as a
# user would, with no Rust toolchain on PATH.
run scripts/dist.sh
export SMARTRETRY_DIST_DONE=1
# Python before the Rust tests: it installs the smartretry package into .venv, and the
# server's ml/train test runs the package's trainer from there.
run scripts/test-python.sh
run cargo test --workspace
for suite in scripts/test-node.sh scripts/test-kotlin.sh scripts/test-go.sh scripts/test-install.sh; do
    [ -x "$suite" ] && run "$suite"
done

# Sum what the runners reported: cargo ("test result: ok. 3 passed; 0 failed"),
# pytest ("12 passed, 1 failed in 2.1s", with or without "=="), node --test ("ℹ pass 9",
# or "# pass 9" in TAP when not on a terminal), Maven/surefire ("Tests run: 18, Failures: 0,
# Errors: 0", printed once by test-kotlin.sh; Maven's own "[INFO] Tests run:" lines are not
# at the start of a line) and `go test -v` (one "--- PASS: Name" / "--- FAIL: Name" per
# top-level test; subtests are indented and not counted again) and test-install.sh
# ("install: 4 passed, 0 failed").
passed=0 failed=0
while IFS= read -r line; do
    case "$line" in
        "test result:"*)
            p=$(sed -n 's/.* \([0-9][0-9]*\) passed.*/\1/p' <<<"$line"); f=$(sed -n 's/.* \([0-9][0-9]*\) failed.*/\1/p' <<<"$line")
            passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})) ;;
        *" passed in "*|*" failed in "*|"="*" passed"*|"="*" failed"*)
            p=$(grep -o '[0-9]* passed' <<<"$line" | grep -o '[0-9]*'); f=$(grep -o '[0-9]* failed' <<<"$line" | grep -o '[0-9]*')
            passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})) ;;
        "ℹ pass "*) passed=$((passed + ${line#ℹ pass })) ;;
        "ℹ fail "*) failed=$((failed + ${line#ℹ fail })) ;;
        "# pass "*) passed=$((passed + ${line#\# pass })) ;;
        "# fail "*) failed=$((failed + ${line#\# fail })) ;;
        "Tests run: "*)
            p=$(sed -n 's/^Tests run: \([0-9]*\).*/\1/p' <<<"$line")
            f=$(sed -n 's/.*Failures: \([0-9]*\).*/\1/p' <<<"$line"); e=$(sed -n 's/.*Errors: \([0-9]*\).*/\1/p' <<<"$line")
            k=$(sed -n 's/.*Skipped: \([0-9]*\).*/\1/p' <<<"$line"); bad=$(( ${f:-0} + ${e:-0} ))
            passed=$((passed + ${p:-0} - bad - ${k:-0})); failed=$((failed + bad)) ;;
        "install: "*" passed, "*" failed")
            p=$(sed -n 's/^install: \([0-9]*\) passed.*/\1/p' <<<"$line"); f=$(sed -n 's/.* \([0-9]*\) failed$/\1/p' <<<"$line")
            passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})) ;;
        "--- PASS: "*) passed=$((passed + 1)) ;;
        "--- FAIL: "*) failed=$((failed + 1)) ;;
    esac
done < "$log"
[ "$status" -eq 0 ] || [ "$failed" -gt 0 ] || failed=1
echo "total: $passed passed, $failed failed"
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
