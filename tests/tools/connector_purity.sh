#!/usr/bin/env bash
# connector_purity.sh - proves that the connectors are pure translators (include/deskbridge/
# connector.h): every object file of the db_connectors library may reference only symbols
# that libc/libm, jansson, libcrypto, the src/util library (db_util) or the connectors
# library itself define.  A reference to anything else (libevent, hiredis, libcurl, a symbol
# of the daemon in src/) fails with the object and the symbol named.
#
# The allowed set is read from the real libraries, not written down: `nm --defined-only` on
# libdb_util.a and the connectors' own objects, `nm -D --defined-only` on the shared
# libraries the build links (jansson and libcrypto as pkg-config found them, libc and libm as
# the compiler finds them).
#
# Usage (registered in tests/CMakeLists.txt as connector_purity):
#   connector_purity.sh --objects 'a.o;b.o;...' --util libdb_util.a --cc CC --nm NM
#                       [--sanitize LIST] [--fuzz ON|OFF] --lib libjansson.so --lib libcrypto.so
set -euo pipefail

objects="" util="" cc="cc" nm="nm" sanitize="" fuzz="OFF"
libs=()
while [ $# -gt 0 ]; do
    case "$1" in
        --objects) objects="$2"; shift 2 ;;
        --util) util="$2"; shift 2 ;;
        --cc) cc="$2"; shift 2 ;;
        --nm) nm="$2"; shift 2 ;;
        --sanitize) sanitize="$2"; shift 2 ;;
        --fuzz) fuzz="$2"; shift 2 ;;
        --lib) libs+=("$2"); shift 2 ;;
        *) echo "connector_purity: unknown argument $1" >&2; exit 2 ;;
    esac
done

fail() { echo "connector_purity: $*" >&2; exit 1; }

IFS=';' read -r -a objs <<<"$objects"
[ "${#objs[@]}" -gt 0 ] && [ -n "${objs[0]}" ] || fail "no object files given"
[ -f "$util" ] || fail "util library not found: $util"

# libc and libm as the compiler links them; ldconfig's cache when the compiler cannot say.
# A library that cannot be found is an error: allowing nothing would be honest, allowing
# everything would not.
find_so() {
    local name="$1" path
    path=$("$cc" -print-file-name="$name" 2>/dev/null || true)
    if [ -z "$path" ] || [ "$path" = "$name" ] || [ ! -e "$path" ]; then
        path=$(ldconfig -p 2>/dev/null | awk -v n="$name" '$1 == n { print $NF; exit }')
    fi
    [ -n "$path" ] && [ -e "$path" ] || fail "cannot find $name"
    echo "$path"
}
libs+=("$(find_so libc.so.6)" "$(find_so libm.so.6)")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

{
    for so in "${libs[@]}"; do
        [ -e "$so" ] || fail "shared library not found: $so"
        # Versioned names (memcpy@@GLIBC_2.14) count by their plain name.
        "$nm" -D --defined-only "$so" | awk 'NF >= 3 { sub(/@.*/, "", $3); print $3 }'
    done
    "$nm" --defined-only "$util" | awk 'NF >= 3 { print $3 }'
    # One connector file calling another (db_tg_post_method) or the registry (db_conf_find).
    for o in "${objs[@]}"; do "$nm" --defined-only "$o" | awk 'NF >= 3 { print $3 }'; done
} | sort -u >"$tmp/allowed"
[ "$(wc -l <"$tmp/allowed")" -gt 1000 ] || fail "suspiciously few allowed symbols; nm failed?"

# Instrumentation adds calls into the sanitizer and coverage runtimes to every object.  They
# are linked in by the compiler for the whole program, not chosen by a connector, so they are
# allowed only in a build that has that instrumentation (DB_SANITIZE, DB_FUZZ); an ordinary
# build still refuses them.
runtime=()
IFS=',' read -r -a sans <<<"$sanitize"
for s in "${sans[@]}"; do
    case "$s" in
        "") ;;
        address) runtime+=("__asan_") ;;
        leak) runtime+=("__lsan_") ;;
        thread) runtime+=("__tsan_") ;;
        memory) runtime+=("__msan_") ;;
        *) runtime+=("__ubsan_") ;; # undefined and its single checks (float-cast-overflow...)
    esac
done
# -fsanitize=fuzzer-no-link: coverage callbacks, the stack-depth variable, and the bounds of
# the counter/PC sections, which the linker defines when it gathers those sections.
case "$fuzz" in
    ON|on|1|TRUE|true|YES|yes)
        runtime+=("__sanitizer_cov_" "__sancov_" "__start___sancov_" "__stop___sancov_") ;;
esac
if [ "${#runtime[@]}" -gt 0 ]; then
    mapfile -t runtime < <(printf '%s\n' "${runtime[@]}" | sort -u)
fi

bad=0 checked=0
for o in "${objs[@]}"; do
    [ -f "$o" ] || fail "object file not found: $o"
    checked=$((checked + 1))
    "$nm" -u "$o" | awk '{ print $NF }' | sort -u >"$tmp/undef"
    while read -r sym; do
        ok=0
        for p in "${runtime[@]+"${runtime[@]}"}"; do
            case "$sym" in "$p"*) ok=1 ;; esac
        done
        if [ "$ok" = 0 ]; then
            echo "connector_purity: $o references $sym, which is outside libc, jansson, libcrypto and src/util"
            bad=$((bad + 1))
        fi
    done < <(comm -23 "$tmp/undef" "$tmp/allowed")
done

echo "connector_purity: $checked object files, $(wc -l <"$tmp/allowed") allowed symbols, runtime prefixes: ${runtime[*]:-none}, $bad foreign references"
[ "$bad" -eq 0 ]
