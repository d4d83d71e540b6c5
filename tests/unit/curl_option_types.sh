#!/usr/bin/env bash
# curl_option_types.sh CC SOURCE_DIR DEFINITIONS [FLAGS...] - curl's compile-time option type
# checks are in force in the gateway's HTTP client: src/net/http_client.c compiles with gcc,
# -O2, -Werror, db_net's definitions (semicolon-separated, as CMake lists them) and curl's
# flags, and the same file with one curl_easy_setopt given a value of the wrong type does not,
# failing on curl's check.  Fails when the checks are off or their reports hidden (e.g.
# CURL_DISABLE_TYPECHECK defined, or the file's -Wsystem-headers line removed).
set -euo pipefail
CC=$1
SRC=$2
DEFS=()
IFS=';' read -r -a list <<<"$3"
for d in "${list[@]}"; do [ -n "$d" ] && DEFS+=("-D$d"); done
shift 3
WORK=$(mktemp -d /tmp/deskbridge-curl-types.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

compile() { # $1 = the file, then more flags
    local file=$1
    shift
    "$CC" -std=gnu11 -O2 -Wall -Wextra -Werror "${DEFS[@]}" -I"$SRC/include" -I"$SRC/src" "$@" \
        -c "$file" -o "$WORK/t.o" 2>"$WORK/err"
}

GOOD="$SRC/src/net/http_client.c"
if ! compile "$GOOD" "$@"; then
    echo "curl_option_types: src/net/http_client.c does not compile:" >&2
    cat "$WORK/err" >&2
    exit 1
fi
# A long option given a string: what the checks exist to catch.
LINE='curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);'
grep -qF "$LINE" "$GOOD" || { echo "curl_option_types: '$LINE' is no longer in http_client.c; pick another line" >&2; exit 1; }
sed "s|curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);|curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, \"0\");|" \
    "$GOOD" >"$WORK/http_client_bad.c"
if compile "$WORK/http_client_bad.c" -iquote "$SRC/src/net" "$@"; then
    echo "curl_option_types: a string passed for a long option compiled: curl's type checks are off" >&2
    exit 1
fi
grep -q '_curl_easy_setopt_err_long' "$WORK/err" ||
    { echo "curl_option_types: failed for another reason:" >&2; cat "$WORK/err" >&2; exit 1; }
echo "curl_option_types: refused: $(grep -m1 -o "call to .*attribute warning: [^[]*" "$WORK/err")"
