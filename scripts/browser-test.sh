#!/usr/bin/env bash
# Browser test of the storefront: installs Debian's Chromium and playwright-core if missing,
# starts `flashsale all` on a private database, Redis prefix and free ports, runs
# tests/browser against it and stops it. Screenshot: test-results/storefront.png.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if [ ! -x /usr/bin/chromium ]; then
  echo "installing chromium" >&2
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
(cd tests/browser && npm ci --no-audit --no-fund --silent)

go build -o bin/flashsale ./cmd/flashsale
mkdir -p test-results
run=$(date +%s)$$
db=fs_browser_$run
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export APP_ENV=test LOG_LEVEL=warn HTTP_ADDR=127.0.0.1:$port BCRYPT_COST=4 \
  DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db?sslmode=disable" \
  REDIS_PREFIX=fsbrowser-$run ORDER_QUEUE=orders-browser-$run SALE_EVENTS_QUEUE=sales-browser-$run \
  KAFKA_EMBEDDED_PORT=0 MAIL_DIR=$(mktemp -d) RATE_LIMIT_AUTH_PER_MIN=0 \
  ADMIN_EMAIL=admin@browser.test ADMIN_PASSWORD=browser-admin-password
./bin/flashsale all > "$root/test-results/server.log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true
  for pattern in "$REDIS_PREFIX:*" "rate:$REDIS_PREFIX:*" "asynq:{$ORDER_QUEUE}:*" "asynq:{$SALE_EVENTS_QUEUE}:*"; do
    redis-cli -h 127.0.0.1 --scan --pattern "$pattern" | xargs -r redis-cli -h 127.0.0.1 unlink >/dev/null
  done
  redis-cli -h 127.0.0.1 srem asynq:queues "$ORDER_QUEUE" "$SALE_EVENTS_QUEUE" >/dev/null
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$root/test-results/server.log" >&2; exit 1; }
  sleep 0.2
done
BASE_URL=http://127.0.0.1:$port ARTIFACTS_DIR="$root/test-results" \
  node --test tests/browser/storefront.test.mjs
