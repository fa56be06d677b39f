#!/usr/bin/env bash
# Per-call cost from Kotlin against the release build of the Rust library
# (bindings/kotlin/src/test/kotlin/dev/smartretry/Bench.kt; numbers in docs/performance.md).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo build -q --release -p smartretry-uniffi
cd bindings/kotlin
mvn -B -q -Dstyle.color=never -DskipTests test-compile dependency:build-classpath -Dmdep.outputFile=target/classpath.txt
java -Djna.library.path="$root/target/release" \
  -cp "target/classes:target/test-classes:$(cat target/classpath.txt)" dev.smartretry.BenchKt
