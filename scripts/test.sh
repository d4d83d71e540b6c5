#!/usr/bin/env bash
# Runs every test: installs what is missing, builds warning-free (-Werror), runs the whole
# suite, fuzzes every libFuzzer target (1000000 inputs each, fixed seed), then builds again with
# AddressSanitizer + UndefinedBehaviorSanitizer and runs the suite again (the npm
# cross-checks, container end-to-end tests, the browser tests of the console and the short
# soak run once, in the first pass).
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
cd "$top"
scripts/deps.sh test
jobs=2

cmake -S . -B build -DDB_WERROR=ON >/dev/null
cmake --build build -j$jobs
ctest --test-dir build --output-on-failure -j$jobs

scripts/fuzz.sh

cmake -S . -B build-asan -DDB_WERROR=ON -DDB_SANITIZE=address,undefined,float-cast-overflow >/dev/null
cmake --build build-asan -j$jobs
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j$jobs -LE 'interop|e2e|browser|soak'
