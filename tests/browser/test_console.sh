#!/usr/bin/env bash
# The agent console in a real headless Chromium (Debian's chromium, driven by playwright-core
# from tests/browser/package-lock.json; no browser is downloaded), against the real daemon, a
# real redis-server and the fake Telegram and WhatsApp (tests/tools/fake_platform_server).
# Screenshots go to $DB_BUILD_DIR/browser/.
set -euo pipefail
src="${DB_SOURCE_DIR:?}"
here="$src/tests/browser"
chromium=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$chromium" ]; then
  if [ "${CI:-}" = true ]; then echo "FAIL: chromium is not installed (scripts/deps.sh test)"; exit 1; fi
  echo "SKIP: chromium is not installed (scripts/deps.sh test)"; exit 77
fi
[ -d "$here/node_modules/playwright-core" ] || npm ci --prefix "$here" --no-audit --no-fund >/dev/null
CHROMIUM="$chromium" exec node "$here/test_console.mjs"
