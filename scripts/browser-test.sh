#!/usr/bin/env bash
# Browser tests in headless Chromium: installs Debian's Chromium and playwright-core if missing,
# starts `flashsale all` on a private database, Redis prefix and free port (scripts/lib/system.sh),
# runs tests/browser against it and stops it. Screenshots: test-results/storefront.png (the
# storefront at /; README's docs/storefront.png is a copy), test-results/control-room.png (the
# control room at /admin; docs/control-room.png) and test-results/docs.png (Swagger UI at /docs).
# admin.test.mjs alters the run's own database (DATABASE_URL) with psql to make a dead letter.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
source scripts/lib/system.sh

if [ ! -x /usr/bin/chromium ]; then
  echo "installing chromium" >&2
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
(cd tests/browser && npm ci --no-audit --no-fund --silent)

start_system browser
ARTIFACTS_DIR="$root/test-results" node --test tests/browser/storefront.test.mjs tests/browser/docs.test.mjs tests/browser/admin.test.mjs
