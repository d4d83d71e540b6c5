#!/usr/bin/env bash
# Installs the Debian packages deskbridge needs to build, run and test, when missing.
# Usage: scripts/deps.sh [run|test]   (test also installs the test tools)
set -euo pipefail
want=(build-essential cmake pkg-config libevent-dev libjansson-dev libhiredis-dev
      libcurl4-openssl-dev libssl-dev redis-server redis-tools ca-certificates)
if [ "${1:-run}" = test ]; then
  want+=(libcmocka-dev clang libclang-rt-14-dev curl python3 tzdata prometheus chromium wrk)
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || want+=(nodejs npm)
fi
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deskbridge: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
