#!/usr/bin/env bash
# Installs every artefact of dist/ (make dist) as a user would, in a temporary directory
# with cargo and rustc off PATH, and runs a call against a real local HTTP server that
# answers 503 once and then 200, in each language:
#   python  a fresh venv, pip install dist/python/smartretry-*.whl
#   node    a fresh npm project, npm install of the two tarballs of dist/npm
#   kotlin  install:install-file of dist/kotlin into a file repository, and a fresh Maven
#           project that depends on dev.smartretry:smartretry from it
#   go      the module copied from dist/go, used by a fresh module through `replace`
# Ends with "install: N passed, N failed" (one per language). Needs python3, node/npm,
# a JDK + Maven, Go and a C compiler; no Rust toolchain.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)
for f in "$root"/dist/python/smartretry-"$version"-*.whl "$root/dist/npm/smartretry-$version.tgz" \
  "$root/dist/npm/smartretry-linux-x64-gnu-$version.tgz" "$root/dist/kotlin/smartretry-$version.jar" \
  "$root/dist/go/smartretry/go.mod"; do
  [ -e "$f" ] || { echo "missing $f: run make dist first" >&2; echo "install: 0 passed, 1 failed"; exit 1; }
done

work="$(mktemp -d)"
server_pid=""
cleanup() {
  [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# PATH without any directory that holds cargo or rustc.
clean_path=""
IFS=: read -r -a dirs <<<"$PATH"
for d in "${dirs[@]}"; do
  [ -x "$d/cargo" ] || [ -x "$d/rustc" ] || clean_path="${clean_path:+$clean_path:}$d"
done
export PATH="$clean_path"
unset CARGO_HOME RUSTUP_HOME CARGO_TARGET_DIR
if command -v cargo >/dev/null || command -v rustc >/dev/null; then
  echo "cargo or rustc is still on PATH" >&2; echo "install: 0 passed, 1 failed"; exit 1
fi

# The server: every path answers 503 on its first request and 200 after (one per language).
cat >"$work/server.py" <<'PY'
import http.server, sys, threading
seen = set()
lock = threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with lock:
            first = self.path not in seen
            seen.add(self.path)
        body = b"busy" if first else b"ok"
        self.send_response(503 if first else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
PY
python3 "$work/server.py" >"$work/port" &
server_pid=$!
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
base="http://127.0.0.1:$(cat "$work/port")"
echo "== a local server at $base: 503 once per path, then 200"

passed=0 failed=0
check() { # name, command…: runs it in its own directory, expects "status 200 after 2 attempts"
  local name=$1; shift
  local t0=$SECONDS out
  if out=$("$@" 2>&1) && grep -q "status 200 after 2 attempts" <<<"$out"; then
    echo "$out" | tail -n 3
    echo "ok   $name ($((SECONDS - t0)) s)"
    passed=$((passed + 1))
  else
    echo "$out" | tail -n 30
    echo "FAIL $name"
    failed=$((failed + 1))
  fi
}

python_install() {
  mkdir -p "$work/py" && cd "$work/py" || return 1
  python3 -m venv venv && venv/bin/pip install -q --disable-pip-version-check "$root"/dist/python/smartretry-*.whl || return 1
  cat >app.py <<'PY'
import sys, urllib.error, urllib.request
from smartretry import smart_retry

attempts = 0

@smart_retry(job_type="install_check")
def fetch(url: str) -> int:
    global attempts
    attempts += 1
    with urllib.request.urlopen(url) as r:
        return r.status

status = fetch(sys.argv[1])
print(f"status {status} after {attempts} attempts")
PY
  venv/bin/python app.py "$base/python"
}

node_install() {
  mkdir -p "$work/node" && cd "$work/node" || return 1
  npm init -y >/dev/null && npm install --no-audit --no-fund --silent \
    "$root/dist/npm/smartretry-$version.tgz" "$root/dist/npm/smartretry-linux-x64-gnu-$version.tgz" || return 1
  cat >app.mjs <<'JS'
import { retry } from 'smartretry';
let attempts = 0;
const status = await retry(async () => {
  attempts += 1;
  const res = await fetch(process.argv[2]);
  if (!res.ok) throw Object.assign(new Error(`HTTP ${res.status}`), { status: res.status });
  return res.status;
}, { jobType: 'install_check' });
console.log(`status ${status} after ${attempts} attempts`);
JS
  node app.mjs "$base/node"
}

kotlin_install() {
  mkdir -p "$work/kt/src/main/kotlin" && cd "$work/kt" || return 1
  mvn -B -q -Dstyle.color=never install:install-file -Dfile="$root/dist/kotlin/smartretry-$version.jar" \
    -DpomFile="$root/dist/kotlin/smartretry-$version.pom" -DlocalRepositoryPath="$work/repo" || return 1
  cat >pom.xml <<XML
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>example</groupId>
  <artifactId>app</artifactId>
  <version>1</version>
  <properties>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
    <kotlin.compiler.jvmTarget>17</kotlin.compiler.jvmTarget>
  </properties>
  <repositories>
    <repository><id>dist</id><url>file://$work/repo</url></repository>
  </repositories>
  <dependencies>
    <dependency><groupId>dev.smartretry</groupId><artifactId>smartretry</artifactId><version>$version</version></dependency>
  </dependencies>
  <build>
    <sourceDirectory>src/main/kotlin</sourceDirectory>
    <plugins>
      <plugin>
        <groupId>org.jetbrains.kotlin</groupId><artifactId>kotlin-maven-plugin</artifactId><version>2.4.21</version>
        <executions><execution><id>compile</id><goals><goal>compile</goal></goals></execution></executions>
      </plugin>
    </plugins>
  </build>
</project>
XML
  cat >src/main/kotlin/App.kt <<'KT'
import dev.smartretry.HttpStatusException
import dev.smartretry.RetryOptions
import dev.smartretry.retry
import java.net.HttpURLConnection
import java.net.URI
import kotlinx.coroutines.runBlocking

fun main(args: Array<String>) = runBlocking {
    var attempts = 0
    val status = retry(RetryOptions(jobType = "install_check")) {
        attempts++
        val c = URI(args[0]).toURL().openConnection() as HttpURLConnection
        val code = c.responseCode
        if (code >= 400) throw HttpStatusException(code)
        code
    }
    println("status $status after $attempts attempts")
}
KT
  mvn -B -q -Dstyle.color=never compile dependency:build-classpath -Dmdep.outputFile=cp.txt || return 1
  # The jar and its declared dependencies only: no jna.library.path, no checkout.
  java -cp "target/classes:$(cat cp.txt)" AppKt "$base/kotlin"
}

go_install() {
  mkdir -p "$work/go/app" && cd "$work/go" || return 1
  cp -r "$root/dist/go/smartretry" "$work/go/smartretry"
  cd app || return 1
  cat >go.mod <<'MOD'
module example.com/app

go 1.24

require github.com/smartretry/smartretry/bindings/go v0.1.0

replace github.com/smartretry/smartretry/bindings/go => ../smartretry
MOD
  cat >main.go <<'GO'
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"

	smartretry "github.com/smartretry/smartretry/bindings/go"
)

func main() {
	attempts, status := 0, 0
	err := smartretry.Do(context.Background(), smartretry.Options{JobType: "install_check"}, func(ctx context.Context) error {
		attempts++
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, os.Args[1], nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		status = resp.StatusCode
		return smartretry.ResponseError(resp)
	})
	if err != nil {
		fmt.Println("failed:", err)
		os.Exit(1)
	}
	fmt.Printf("status %d after %d attempts\n", status, attempts)
}
GO
  GOFLAGS=-mod=mod go build -o app . && ./app "$base/go"
}

check python python_install
check node node_install
check kotlin kotlin_install
check go go_install
echo "install: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
