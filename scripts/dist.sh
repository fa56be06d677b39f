#!/usr/bin/env bash
# `make dist`: every artefact a user installs, into dist/, from release builds.
#   dist/python/  smartretry-<v>-cp39-abi3-manylinux_*.whl   (maturin, abi3, stripped)
#   dist/npm/     smartretry-<v>.tgz + smartretry-linux-x64-gnu-<v>.tgz   (napi-rs layout:
#                 the platform package is an optional dependency of the main one)
#   dist/kotlin/  smartretry-<v>.jar (the native library inside, under JNA's linux-x86-64/)
#                 + smartretry-<v>.pom   (mvn install:install-file -Dfile=… -DpomFile=…)
#   dist/go/      smartretry/ (the Go module, with deps/linux_amd64/libsmartretry_uniffi.a)
#                 + smartretry-go-<v>.tar.gz
# Usage: scripts/dist.sh [python] [node] [kotlin] [go]   (default: all four)
# The language test suites use these same builds: scripts/test-*.sh call this script for
# their own artefact, so Rust is built once, in release, per run. Safe to run again.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(python node kotlin go)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
release="${CARGO_TARGET_DIR:-$root/target}/release"
mkdir -p dist

size() { du -sh "$1" | cut -f1; }

# The uniffi crate's release library (cdylib for Kotlin, staticlib for Go), and stripped
# copies for shipping: uniffi-bindgen reads its metadata from the unstripped one.
native_built=0
native() {
  [ "$native_built" = 0 ] || return 0
  native_built=1
  echo "== cargo build --release -p smartretry-uniffi"
  cargo build -q --release -p smartretry-uniffi
  mkdir -p target/dist-native
  strip --strip-unneeded -o target/dist-native/libsmartretry_uniffi.so "$release/libsmartretry_uniffi.so"
  strip --strip-debug -o target/dist-native/libsmartretry_uniffi.a "$release/libsmartretry_uniffi.a"
}

python_wheel() {
  echo "== python: maturin build --release --strip (abi3, manylinux check)"
  local py=.venv/bin/python
  [ -x "$py" ] && "$py" -m maturin --version >/dev/null 2>&1 || scripts/venv.sh >/dev/null
  rm -rf dist/python
  (cd python && "../$py" -m maturin build --quiet --release --strip --out ../dist/python)
  local wheel
  wheel=$(ls dist/python/smartretry-"$version"-*.whl)
  case "$wheel" in
    *abi3-manylinux*) ;;
    *) echo "not an abi3 manylinux wheel: $wheel" >&2; exit 1 ;;
  esac
  echo "   $wheel ($(size "$wheel"))"
}

npm_packages() {
  echo "== npm: napi build --platform --release, tsc, npm pack (main + linux-x64-gnu)"
  local committed f stale=0
  committed="$(mktemp -d)"
  for f in index.d.ts index.js; do cp "node/native/$f" "$committed/$f"; done
  (cd node && npm install --no-audit --no-fund --silent && npm run --silent build)
  for f in index.d.ts index.js; do
    if ! diff -u "$committed/$f" "node/native/$f"; then
      echo "node/native/$f is stale: run 'npm run build' in node/ and commit it" >&2
      stale=1
    fi
  done
  rm -rf "$committed"
  [ "$stale" = 0 ] || exit 1
  rm -rf dist/npm target/dist-npm
  mkdir -p dist/npm target/dist-npm
  local platform=target/dist-npm/linux-x64-gnu
  cp -r node/npm/linux-x64-gnu "$platform"
  strip --strip-unneeded -o "$platform/smartretry.linux-x64-gnu.node" node/native/smartretry.linux-x64-gnu.node
  (cd node && npm pack --silent --pack-destination ../dist/npm >/dev/null)
  (cd "$platform" && npm pack --silent --pack-destination "$root/dist/npm" >/dev/null)
  for t in dist/npm/*.tgz; do echo "   $t ($(size "$t"))"; done
}

kotlin_jar() {
  echo "== kotlin: mvn package (the stripped native library under linux-x86-64/)"
  (cd bindings/kotlin && mvn -B -q -Dstyle.color=never -DskipTests \
    -Dsmartretry.native.dir="$root/target/dist-native" package)
  rm -rf dist/kotlin
  mkdir -p dist/kotlin
  cp "bindings/kotlin/target/smartretry-$version.jar" dist/kotlin/
  cp bindings/kotlin/pom.xml "dist/kotlin/smartretry-$version.pom"
  # grep reads all of unzip's output (no -q): an early exit would fail the pipe under pipefail.
  unzip -Z1 "dist/kotlin/smartretry-$version.jar" | grep -x 'linux-x86-64/libsmartretry_uniffi.so' >/dev/null \
    || { echo "the jar has no linux-x86-64/libsmartretry_uniffi.so" >&2; exit 1; }
  echo "   dist/kotlin/smartretry-$version.jar ($(size "dist/kotlin/smartretry-$version.jar"))"
}

go_module() {
  echo "== go: the module with deps/linux_amd64 (release, stripped of debug info)"
  # The checkout's module links the same library (its deps/ is not committed).
  mkdir -p bindings/go/deps/linux_amd64
  cp target/dist-native/libsmartretry_uniffi.a bindings/go/deps/linux_amd64/
  rm -rf dist/go
  mkdir -p dist/go/smartretry
  (cd bindings/go && cp go.mod smartretry.h README.md ./*.go ../../dist/go/smartretry/ && cp -r deps ../../dist/go/smartretry/)
  rm -f dist/go/smartretry/*_test.go
  tar -C dist/go -czf "dist/go/smartretry-go-$version.tar.gz" smartretry
  echo "   dist/go/smartretry ($(size dist/go/smartretry)), deps/linux_amd64/libsmartretry_uniffi.a" \
    "($(size dist/go/smartretry/deps/linux_amd64/libsmartretry_uniffi.a)), tarball ($(size "dist/go/smartretry-go-$version.tar.gz"))"
}

for part in "${parts[@]}"; do
  case "$part" in
    python) python_wheel ;;
    node) npm_packages ;;
    kotlin) native; kotlin_jar ;;
    go) native; go_module ;;
    *) echo "unknown part '$part' (python, node, kotlin, go)" >&2; exit 2 ;;
  esac
done
