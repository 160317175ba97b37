#!/usr/bin/env bash
# The control page in a real browser: Debian's headless Chromium, driven by playwright-core
# (no browser download), against the real binary. Installs what it needs when missing:
#   apt: chromium, nodejs, npm     npm: playwright-core (exact version from package-lock.json)
# Screenshots: target/browser-artifacts/control-page*.png and pairing-*.png.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "== apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cd "$here"
if ! cmp -s package-lock.json node_modules/.installed-from-lock 2>/dev/null; then
  echo "== npm ci"
  # Never fetch Playwright's own browsers: Debian's chromium is the one we test with.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --ignore-scripts
  cp package-lock.json node_modules/.installed-from-lock
fi

cd "$repo"
if [ -z "${INTERCOM_BIN:-}" ]; then
  echo "== cargo build"
  cargo build --locked
  export INTERCOM_BIN="$repo/target/debug/intercom"
fi
echo "== browser test"
export CHROMIUM="${CHROMIUM:-$(command -v chromium)}"
node "$here/control-page.test.mjs"
node "$here/pairing.test.mjs"
node "$here/ringing.test.mjs"
