#!/usr/bin/env bash
# test_viber_signature.sh - our Viber callback signatures against the official SDK.
#
# For several bodies (big message_token, raw UTF-8, escaped Unicode, empty object, trailing
# newline): db_sign signs with the bot token; viber-bot 1.0.18's MessageValidator (used
# directly: its middleware reads a header name Node never produces) must accept the signature
# and compute the very same hex, must reject it on a body changed by one byte and under another
# token; and our connector's verify (test_viber --verify) must agree on every case.
# Any mismatch exits non-zero.
set -euo pipefail

: "${DB_SOURCE_DIR:?set by CTest}" "${DB_BUILD_DIR:?set by CTest}"
interop="$DB_SOURCE_DIR/tests/interop"
sign="$DB_BUILD_DIR/tools/db_sign"
verify="$DB_BUILD_DIR/tests/test_viber"

for tool in "$sign" "$verify"; do
    [ -x "$tool" ] || { echo "FAIL: $tool not built"; exit 1; }
done
command -v node >/dev/null || { echo "FAIL: node is not installed"; exit 1; }
if [ ! -d "$interop/node_modules/viber-bot" ]; then
    npm ci --prefix "$interop" --no-audit --no-fund >/dev/null
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

token='445da6az1s345z78-dazcczb2542zv51a-e0vc5fva17480im9'
other='445da6az1s345z78-dazcczb2542zv51a-e0vc5fva17480im8'

cp "$DB_SOURCE_DIR/tests/fixtures/viber/message_text_big_token.json" "$tmp/big_token.json"
cp "$DB_SOURCE_DIR/tests/fixtures/viber/message_text_unicode.json" "$tmp/unicode.json"
cp "$DB_SOURCE_DIR/tests/fixtures/viber/message_text_unicode_escaped.json" "$tmp/escaped.json"
cp "$DB_SOURCE_DIR/tests/fixtures/viber/receipt_failed.json" "$tmp/receipt.json"
printf '{}' >"$tmp/empty_object.json"
printf '{"event":"webhook","timestamp":1457764197627,"message_token":5491234567890123456}\n' \
    >"$tmp/trailing_newline.json"

cat >"$tmp/check.js" <<'EOF'
// argv: token, other token, body file, signature.  Prints one line and exits 1 on mismatch.
const fs = require("fs");
const path = require("path");
const MessageValidator = require(path.join(process.env.INTEROP,
    "node_modules/viber-bot/lib/message/message-validator.js"));
const [token, other, file, sig] = process.argv.slice(2);
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const body = fs.readFileSync(file); // a Buffer: the HMAC runs over the exact bytes
const v = new MessageValidator(quiet, token);
const tampered = Buffer.from(body);
tampered[tampered.length >> 1] ^= 0x01;
const problems = [];
if (v._calculateHmacFromMessage(body) !== sig) problems.push("SDK computes a different HMAC");
if (!v.validateMessage(sig, body)) problems.push("SDK rejects our signature");
if (v.validateMessage(sig, tampered)) problems.push("SDK accepts a tampered body");
if (new MessageValidator(quiet, other).validateMessage(sig, body))
    problems.push("SDK accepts the signature under another token");
fs.writeFileSync(file + ".tampered", tampered);
console.log(problems.length ? "FAIL: " + problems.join("; ") : "sdk ok");
process.exit(problems.length ? 1 : 0);
EOF

pass=0 fail=0
for body in "$tmp"/*.json; do
    name=$(basename "$body" .json)
    sig=$("$sign" "$token" "$body")
    problems=()
    [[ "$sig" =~ ^[0-9a-f]{64}$ ]] || problems+=("db_sign printed '$sig'")
    if ! out=$(INTEROP="$interop" node "$tmp/check.js" "$token" "$other" "$body" "$sig"); then
        problems+=("$out")
    fi
    "$verify" --verify "$token" "$body" "$sig" || problems+=("our verify rejects it")
    if "$verify" --verify "$token" "$body.tampered" "$sig"; then
        problems+=("our verify accepts the tampered body")
    fi
    if "$verify" --verify "$other" "$body" "$sig"; then
        problems+=("our verify accepts it under another token")
    fi
    if [ ${#problems[@]} -eq 0 ]; then
        echo "ok   $name"
        pass=$((pass + 1))
    else
        printf 'FAIL %s: %s\n' "$name" "${problems[*]}"
        fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -ge 6 ]
