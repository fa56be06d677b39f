#!/usr/bin/env bash
# The Redis store's tests start a real redis-server on a free loopback port: install the
# Debian package when it is missing (idempotent; needs root or sudo).
set -euo pipefail
command -v redis-server >/dev/null && exit 0
echo "redis-server not found: installing the Debian package"
if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
# The package starts a system-wide server on 6379; the tests never use it.
command -v redis-server >/dev/null
