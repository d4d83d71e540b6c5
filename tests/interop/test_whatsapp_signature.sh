#!/usr/bin/env bash
# test_whatsapp_signature.sh - our X-Hub-Signature-256 handling against whatsapp-api-js 6.3.0.
#
# db_sign (deskbridge's HMAC helpers) signs bodies; whatsapp-api-js's verifyRequestSignature
# must accept them and reject a tampered body and a wrong signature, and our connector's
# verify (test_whatsapp --verify) must reach the same verdict on every body Meta could send.
#
# whatsapp-api-js rewrites every non-ASCII character as \uXXXX before hashing, because Meta
# signs (and sends) that escaped form.  So:
#   - ASCII and Meta-escaped bodies: both sides hash the bytes as they are; db_sign's
#     signature must be accepted by both.
#   - raw UTF-8 bodies (never sent by Meta): whatsapp-api-js accepts the signature of the
#     ESCAPED form (made here by an independent escaper) and refuses the signature of the raw
#     bytes; deskbridge verifies bytes as received, so it accepts the raw-bytes signature and
#     refuses the escaped-form one.  The script checks this divergence explicitly.
# Any mismatch exits non-zero.
set -euo pipefail

: "${DB_SOURCE_DIR:?set by CTest}" "${DB_BUILD_DIR:?set by CTest}"
interop="$DB_SOURCE_DIR/tests/interop"
fixtures="$DB_SOURCE_DIR/tests/fixtures/whatsapp"
sign="$DB_BUILD_DIR/tools/db_sign"
verify="$DB_BUILD_DIR/tests/test_whatsapp"

for tool in "$sign" "$verify"; do
    [ -x "$tool" ] || { echo "FAIL: $tool not built"; exit 1; }
done
command -v node >/dev/null || { echo "FAIL: node is not installed"; exit 1; }
command -v python3 >/dev/null || { echo "FAIL: python3 is not installed"; exit 1; }
if [ ! -d "$interop/node_modules/whatsapp-api-js" ]; then
    npm ci --prefix "$interop" --no-audit --no-fund >/dev/null
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

secret='a3f1c2d4e5b6978812345678abcdef01'
wrong='a3f1c2d4e5b6978812345678abcdef02'

cat >"$tmp/check.mjs" <<'EOF'
// argv: library entry file, secret, body file, header value.  Prints "accepted" or "refused".
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
const [lib, secret, file, header] = process.argv.slice(2);
const { WhatsAppAPI } = await import(pathToFileURL(lib).href);
const wa = new WhatsAppAPI({ token: "unused", appSecret: secret, v: "v21.0" });
// the body as an HTTP framework hands it over: decoded UTF-8 text
const body = readFileSync(file, "utf8");
console.log((await wa.verifyRequestSignature(body, header)) ? "accepted" : "refused");
EOF

# Meta's escaping, written independently of whatsapp-api-js: every character outside
# printable ASCII as lowercase \uXXXX of its UTF-16 code units.
escape() {
    python3 - "$1" "$2" <<'EOF'
import sys
text = open(sys.argv[1], encoding="utf-8").read()
out = []
for ch in text:
    if ord(ch) < 0x7f:
        out.append(ch)
    else:
        units = ch.encode("utf-16-be")
        out.extend("\\u%02x%02x" % (units[i], units[i + 1]) for i in range(0, len(units), 2))
open(sys.argv[2], "w", encoding="ascii", newline="").write("".join(out))
EOF
}

failures=0
checks=0
js() { node "$tmp/check.mjs" "$interop/node_modules/whatsapp-api-js/lib/index.js" "$@"; }
ours() { "$verify" --verify "$@" 2>/dev/null || true; }

expect() { # name, what, want, got
    checks=$((checks + 1))
    if [ "$3" = "$4" ]; then
        printf 'ok    %-26s %-52s %s\n' "$1" "$2" "$4"
    else
        printf 'FAIL  %-26s %-52s want %s, got %s\n' "$1" "$2" "$3" "$4"
        failures=$((failures + 1))
    fi
}

# name, file, kind (ascii|escaped|raw)
cases=(
    "ascii_text:$fixtures/text.json:ascii"
    "ascii_batch:$fixtures/batch.json:ascii"
    "escaped_arabic:$fixtures/unicode_ar_escaped.json:escaped"
    "escaped_persian:$fixtures/unicode_fa_escaped.json:escaped"
    "escaped_emoji_slash:$fixtures/unicode_emoji_escaped.json:escaped"
    "raw_polish:$fixtures/unicode_pl_raw.json:raw"
    "raw_russian:$fixtures/unicode_ru_raw.json:raw"
    "raw_emoji:$fixtures/unicode_emoji_raw.json:raw"
)

for c in "${cases[@]}"; do
    IFS=: read -r name file kind <<<"$c"
    sig="sha256=$("$sign" "$secret" "$file")"

    if command -v openssl >/dev/null; then
        ossl="sha256=$(openssl dgst -sha256 -hmac "$secret" <"$file" | awk '{print $NF}')"
        expect "$name" "db_sign equals openssl" "$ossl" "$sig"
    fi

    if [ "$kind" = raw ]; then
        escape "$file" "$tmp/$name.escaped"
        esig="sha256=$("$sign" "$secret" "$tmp/$name.escaped")"
        expect "$name" "js: raw body, signature of escaped form" accepted "$(js "$secret" "$file" "$esig")"
        expect "$name" "js: raw body, signature of raw bytes" refused "$(js "$secret" "$file" "$sig")"
        expect "$name" "js: escaped form, its signature" accepted "$(js "$secret" "$tmp/$name.escaped" "$esig")"
        expect "$name" "ours: escaped form, its signature" accepted "$(ours "$secret" "$tmp/$name.escaped" "$esig")"
        expect "$name" "ours: raw body, signature of raw bytes" accepted "$(ours "$secret" "$file" "$sig")"
        expect "$name" "ours: raw body, signature of escaped form" refused "$(ours "$secret" "$file" "$esig")"
        continue
    fi

    if [ "$kind" = escaped ]; then
        # the committed Meta-form fixture is exactly what the independent escaper makes
        # of its raw twin
        escape "${file%_escaped.json}_raw.json" "$tmp/$name.from_raw"
        if [ "$name" != escaped_emoji_slash ]; then
            expect "$name" "fixture equals escape(raw twin)" same \
                "$(cmp -s "$file" "$tmp/$name.from_raw" && echo same || echo differs)"
        fi
    fi

    expect "$name" "js: db_sign signature" accepted "$(js "$secret" "$file" "$sig")"
    expect "$name" "ours: db_sign signature" accepted "$(ours "$secret" "$file" "$sig")"
    upper="sha256=$(printf '%s' "${sig#sha256=}" | tr a-f A-F)"
    expect "$name" "js: uppercase hex" accepted "$(js "$secret" "$file" "$upper")"
    expect "$name" "ours: uppercase hex" accepted "$(ours "$secret" "$file" "$upper")"

    # one byte changed: a digit of the message id
    sed '0,/wamid\.HBgLMTY1/s//wamid.HBgLMTY2/' "$file" >"$tmp/$name.tampered"
    cmp -s "$file" "$tmp/$name.tampered" && { echo "FAIL: could not tamper $name"; exit 1; }
    expect "$name" "js: tampered body" refused "$(js "$secret" "$tmp/$name.tampered" "$sig")"
    expect "$name" "ours: tampered body" refused "$(ours "$secret" "$tmp/$name.tampered" "$sig")"

    wsig="sha256=$("$sign" "$wrong" "$file")"
    expect "$name" "js: signed with another secret" refused "$(js "$secret" "$file" "$wsig")"
    expect "$name" "ours: signed with another secret" refused "$(ours "$secret" "$file" "$wsig")"
    expect "$name" "js: garbage signature" refused "$(js "$secret" "$file" "sha256=00")"
    expect "$name" "ours: garbage signature" refused "$(ours "$secret" "$file" "sha256=00")"
done

echo "$checks checks, $failures failed"
[ "$failures" -eq 0 ]
