#!/usr/bin/env bash
# The Kotlin SDK (bindings/kotlin) from a fresh clone. Needs cargo, a JDK (17+) and Maven.
#   1. the shipped native library: scripts/dist.sh kotlin (release, stripped, packed into
#      the jar under linux-x86-64/) unless scripts/test.sh already ran `make dist`
#   2. regenerate the Kotlin binding with the in-repo uniffi-bindgen (debug) from the
#      unstripped release library and fail if the committed one differs (stale)
#   3. mvn test: JUnit 5 (retry helpers, the compact path, shared vectors, examples/kotlin),
#      loading the library from the classpath as a user's JVM does; the first run downloads
#      the Maven artefacts into ~/.m2, later runs are offline-fast
# Safe to run again. Ends with Maven's "Tests run: N, Failures: F, Errors: E" summary.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
if ! command -v mvn >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "== apt-get install maven (JDK included)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq maven >/dev/null
fi
command -v mvn >/dev/null || { echo "mvn not found: install Maven 3.8+ and a JDK 17+" >&2; exit 1; }

[ -n "${SMARTRETRY_DIST_DONE:-}" ] || scripts/dist.sh kotlin
lib="${CARGO_TARGET_DIR:-target}/release/libsmartretry_uniffi.so"
generated="bindings/kotlin/src/main/kotlin/dev/smartretry/smartretry_uniffi.kt"

echo "== cargo build -p uniffi-bindgen (debug)"
cargo build -q -p uniffi-bindgen

echo "== the generated Kotlin is up to date"
fresh="$(mktemp -d)"
trap 'rm -rf "$fresh"' EXIT
"${CARGO_TARGET_DIR:-target}/debug/uniffi-bindgen" generate --no-format --library "$lib" --language kotlin --out-dir "$fresh" >/dev/null
if ! diff -u "$generated" "$fresh/dev/smartretry/smartretry_uniffi.kt"; then
  echo "$generated is stale: run scripts/test-kotlin.sh --bless (or copy $fresh's file) and commit it" >&2
  if [ "${1:-}" = "--bless" ]; then cp "$fresh/dev/smartretry/smartretry_uniffi.kt" "$generated"; else exit 1; fi
fi

echo "== mvn test (bindings/kotlin)"
cd bindings/kotlin
rm -rf target/surefire-reports
status=0
mvn -B -q -Dstyle.color=never test || status=$?
# -q hides Maven's own summary; print the one scripts/test.sh adds up, on a line of its own.
echo
python3 - <<'PY'
import glob, xml.etree.ElementTree as ET
t = f = e = s = 0
for path in glob.glob("target/surefire-reports/TEST-*.xml"):
    r = ET.parse(path).getroot()
    t += int(r.get("tests")); f += int(r.get("failures")); e += int(r.get("errors")); s += int(r.get("skipped"))
print(f"Tests run: {t}, Failures: {f}, Errors: {e}, Skipped: {s}")
PY
exit "$status"
