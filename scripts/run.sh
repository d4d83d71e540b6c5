#!/usr/bin/env bash
# Runs the gateway in the foreground: installs what is missing, builds, and starts a private
# redis-server (unix socket under var/) when DESKBRIDGE_REDIS_URL is not set.
# All arguments are passed to deskbridge (e.g. --config deskbridge.conf).
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
cd "$top"
scripts/deps.sh run
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDB_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

redis_pid=""
cleanup() { [ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT

# The configuration file the gateway will read (--config FILE, --config=FILE or
# DESKBRIDGE_CONFIG), so that a key it sets is not overridden by a variable exported here.
conf_file=${DESKBRIDGE_CONFIG:-}
prev=""
for a in "$@"; do
  case "$a" in --config=*) conf_file=${a#--config=} ;; esac
  [ "$prev" = --config ] && conf_file=$a
  prev=$a
done
conf_sets() { [ -n "$conf_file" ] && grep -qs "^[[:space:]]*$1[[:space:]]*=" -- "$conf_file"; }

if [ -z "${DESKBRIDGE_REDIS_URL:-}" ] && ! conf_sets redis_url; then
  mkdir -p var/redis
  # AOF with fsync every second: an acknowledged webhook survives a crash of either process.
  redis-server --port 0 --unixsocket "$top/var/redis/redis.sock" --unixsocketperm 700 \
    --dir "$top/var/redis" --appendonly yes --appendfsync everysec --save "" \
    --logfile "$top/var/redis/redis.log" &
  redis_pid=$!
  for _ in $(seq 1 50); do
    redis-cli -s "$top/var/redis/redis.sock" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  export DESKBRIDGE_REDIS_URL="unix://$top/var/redis/redis.sock"
  # The Redis is ours alone: its database 1 holds the dedupe keys, which would otherwise slow
  # the dispatcher's own lookups as they grow (docs/config.md, dedupe_db).
  if [ -z "${DESKBRIDGE_DEDUPE_DB:-}" ] && ! conf_sets dedupe_db; then
    export DESKBRIDGE_DEDUPE_DB=1
  fi
  echo "deskbridge: private Redis at $DESKBRIDGE_REDIS_URL (data in var/redis)" >&2
fi
build/deskbridge "$@" &
gw=$!
trap 'kill -TERM $gw 2>/dev/null' INT TERM
wait $gw || true
wait $gw 2>/dev/null || true
