#!/usr/bin/env bash
# Runs every libFuzzer target (clang, ASan + UBSan) for FUZZ_RUNS inputs each (default
# 1000000) from a fixed seed, on a scratch copy of its committed corpus, so a run is
# reproducible: the same tree fuzzes the same inputs.  FUZZ_SEED=random explores anew.
# Fails on any crash, leak or sanitizer report; new inputs stay in the scratch copy (merge
# findings into tests/fuzz/corpus/ by hand).
set -euo pipefail
top="$(cd "$(dirname "$0")/.." && pwd)"
cd "$top"
runs="${FUZZ_RUNS:-1000000}"
seed="${FUZZ_SEED:-1}"
[ "$seed" = random ] && seed=0
CC=clang cmake -S . -B build-fuzz -DDB_FUZZ=ON -DDB_SANITIZE=address,undefined >/dev/null
targets=$(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$//')
cmake --build build-fuzz -j2 --target $targets >/dev/null
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
failed=0
for t in $targets; do
  corpus="tests/fuzz/corpus/${t#fuzz_}"
  mkdir -p "$scratch/$t" && cp -r "$corpus"/. "$scratch/$t/"
  if build-fuzz/tests/$t -runs="$runs" -seed="$seed" -print_final_stats=1 -artifact_prefix="$scratch/$t-" \
       "$scratch/$t" >"$scratch/$t.log" 2>&1; then
    echo "fuzz $t: ok, $(grep -o 'stat::number_of_executed_units: [0-9]*' "$scratch/$t.log" | awk '{print $2}') runs (seed $seed)"
  else
    echo "fuzz $t: FAILED"; tail -40 "$scratch/$t.log"; failed=$((failed + 1))
  fi
done
n=$(echo $targets | wc -w)
echo "fuzz: $((n - failed)) passed, $failed failed"
exit $failed
