#!/usr/bin/env bash
# layer_check.sh - proves that data flows down the layers of src/ (docs/ARCHITECTURE.md):
# every folder is a static library, and an object of one layer may reference a symbol that
# the project defines only when its own layer or a layer it declares below it defines it.
# A call up the layers (a worker calling the app, the store calling a feature) or sideways
# between features fails with the object, the symbol and the layer that defines it named.
#
# Symbols of outside libraries (libc, libevent, hiredis, ...) are not the project's and are
# not judged here; connector_purity.sh holds the connectors to their narrower set.
#
# Usage (registered in tests/CMakeLists.txt as layer_check; CMake computes each layer's
# transitive list of layers below it from the DEPS of db_layer() in CMakeLists.txt):
#   layer_check.sh --nm NM --layer NAME:ARCHIVE:BELOW1,BELOW2,... [--layer ...]
set -euo pipefail
# join needs both lists in one byte order, whatever the locale.
export LC_ALL=C

nm="nm"
specs=()
while [ $# -gt 0 ]; do
    case "$1" in
        --nm) nm="$2"; shift 2 ;;
        --layer) specs+=("$2"); shift 2 ;;
        *) echo "layer_check: unknown argument $1" >&2; exit 2 ;;
    esac
done
fail() { echo "layer_check: $*" >&2; exit 1; }
[ "${#specs[@]}" -ge 2 ] || fail "fewer than two layers given"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Who defines what: "symbol layer" for every global symbol each layer's archive defines.
for spec in "${specs[@]}"; do
    IFS=':' read -r name archive below <<<"$spec"
    [ -f "$archive" ] || fail "archive of layer $name not found: $archive"
    "$nm" --defined-only --extern-only "$archive" 2>/dev/null |
        awk -v l="$name" 'NF >= 3 && $2 != "U" { print $3, l }'
done | sort -u >"$tmp/defined"
[ -s "$tmp/defined" ] || fail "no symbols defined by any layer; nm failed?"
# A symbol defined by two layers would make the verdict depend on which one is meant.
dups=$(awk '{ print $1 }' "$tmp/defined" | uniq -d)
[ -z "$dups" ] || fail "symbols defined in more than one layer: $dups"

# Every reference to a project symbol, as "symbol layer member", joined with its owner.
for spec in "${specs[@]}"; do
    IFS=':' read -r name archive below <<<"$spec"
    "$nm" --undefined-only "$archive" |
        awk -v l="$name" '/:$/ { m = $1; sub(/:$/, "", m); next } NF >= 2 && $1 == "U" { print $2, l, m }'
done | sort -k1,1 >"$tmp/refs"
join "$tmp/refs" "$tmp/defined" >"$tmp/joined" || true # symbol layer member owner
checked=$(wc -l <"$tmp/joined")
bad=0
while read -r sym name member owner; do
    below=""
    for spec in "${specs[@]}"; do
        IFS=':' read -r n _ b <<<"$spec"
        [ "$n" = "$name" ] && below="$b"
    done
    case ",$name,$below," in
        *",$owner,"*) ;;
        *) echo "layer_check: $name/$member calls $sym of layer $owner, which is not below $name"
           bad=$((bad + 1)) ;;
    esac
done <"$tmp/joined"
echo "layer_check: ${#specs[@]} layers, $checked references to project symbols, $bad going up or sideways"
[ "$bad" -eq 0 ]
