#!/usr/bin/env bash
# Sets up and runs the whole system locally: PostgreSQL and Redis (installed and started if
# needed), the database, migrations, then `flashsale all` on :8080. Ctrl-C stops it gracefully.
#
# With DATABASE_URL and REDIS_URL both set (the dev container of .devcontainer/, or services of
# your own) it installs and starts nothing: it waits until they answer and runs against them.
set -euo pipefail
cd "$(dirname "$0")/.."

# wait_for WHAT CLIENT COMMAND...: until COMMAND succeeds (30 s at most); skipped without CLIENT.
wait_for() {
  local what=$1 client=$2
  shift 2
  if ! command -v "$client" >/dev/null; then
    echo "($client is not installed: not waiting for $what)" >&2
    return 0
  fi
  for _ in $(seq 1 60); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "$what does not answer" >&2
  return 1
}
redis_ping() { [ "$(redis-cli -u "$REDIS_URL" ping 2>/dev/null)" = PONG ]; }

if [ -n "${DATABASE_URL:-}" ] && [ -n "${REDIS_URL:-}" ]; then
  echo "Using DATABASE_URL and REDIS_URL as set: installing and starting nothing" >&2
  wait_for "PostgreSQL at DATABASE_URL" pg_isready pg_isready -d "$DATABASE_URL"
  wait_for "Redis at REDIS_URL" redis-cli redis_ping
else
  ./scripts/services.sh
fi
command -v go >/dev/null || { echo "Go 1.26 or newer is needed: https://go.dev/dl/" >&2; exit 1; }
go build -o bin/flashsale ./cmd/flashsale
# The embedded Kafka broker keeps its log and offsets across runs (KAFKA_EMBEDDED_DIR= for memory).
export KAFKA_EMBEDDED_DIR="${KAFKA_EMBEDDED_DIR-var/kafka}"
echo "Flashsale on http://localhost${HTTP_ADDR:-:8080}  (admin: ${ADMIN_EMAIL:-admin@flashsale.local})" >&2
exec ./bin/flashsale all
