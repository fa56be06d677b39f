#!/usr/bin/env bash
# Per-call cost from Kotlin against the shipped (release, stripped) native library, side by
# side with resilience4j's Retry in one JVM (bindings/kotlin/src/test/kotlin/dev/smartretry/
# Bench.kt; numbers in docs/performance.md).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
scripts/dist.sh kotlin >/dev/null
cd bindings/kotlin
mvn -B -q -Dstyle.color=never -DskipTests test-compile dependency:build-classpath -Dmdep.outputFile=target/classpath.txt
java -cp "target/classes:target/test-classes:$(cat target/classpath.txt)" dev.smartretry.BenchKt
