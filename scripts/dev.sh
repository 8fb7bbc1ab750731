#!/usr/bin/env bash
# Sets up and runs the whole system locally: PostgreSQL and Redis (installed and started if
# needed), the database, migrations, then `flashsale all` on :8080. Ctrl-C stops it gracefully.
#
# With DATABASE_URL and REDIS_URL both set (the dev container of .devcontainer/, or services of
# your own) it installs and starts nothing: it waits until they answer and runs against them.

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

# http_url HTTP_ADDR: the URL a browser on this machine opens for a listen address (":8080",
# "0.0.0.0:8080", "127.0.0.1:18900", "localhost:8080", "[::1]:8080").
http_url() {
  local addr=${1:-:8080} host port
  port=${addr##*:}
  host=${addr%:*}
  case "$host" in "" | 0.0.0.0 | "[::]") host=localhost ;; esac
  echo "http://$host:$port"
}

# ensure_database URL: creates the database URL names when it is missing and the URL points at
# this machine; for a remote server it only says that it creates nothing.
ensure_database() {
  local url=$1 after authority hostport host path db query=""
  after=${url#*://}
  authority=${after%%/*}
  hostport=${authority##*@}
  if [ "${hostport:0:1}" = "[" ]; then host="${hostport%%]*}]"; else host=${hostport%%:*}; fi
  path=${after#"$authority"}
  path=${path#/}
  db=${path%%\?*}
  if [ "$path" != "$db" ]; then query="?${path#*\?}"; fi
  case "$host" in
    "" | 127.0.0.1 | localhost | "[::1]") ;;
    *)
      echo "DATABASE_URL names a server on $host: not creating database $db there (it must exist)" >&2
      return 0
      ;;
  esac
  # The same server and user, the maintenance database.
  local admin="${url%%://*}://$authority/postgres$query"
  if [ "$(psql "$admin" -tAc "SELECT 1 FROM pg_database WHERE datname = '${db//\'/\'\'}'")" != 1 ]; then
    echo "creating database $db (DATABASE_URL)" >&2
    psql "$admin" -qc "CREATE DATABASE \"${db//\"/\"\"}\""
  fi
}

# Sourced (by a test): the functions only.
if [ "${BASH_SOURCE[0]}" != "$0" ]; then return 0; fi
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/tools.sh
# A C compiler for cgo (confluent-kafka-go), psql to create the database.
need gcc:gcc,libc6-dev psql:postgresql-client

if [ -n "${DATABASE_URL:-}" ] && [ -n "${REDIS_URL:-}" ]; then
  echo "Using DATABASE_URL and REDIS_URL as set: installing and starting nothing" >&2
  wait_for "PostgreSQL at DATABASE_URL" pg_isready pg_isready -d "$DATABASE_URL"
  wait_for "Redis at REDIS_URL" redis-cli redis_ping
else
  ./scripts/services.sh
fi
if [ -n "${DATABASE_URL:-}" ]; then ensure_database "$DATABASE_URL"; fi
command -v go >/dev/null || { echo "Go 1.26 or newer is needed: https://go.dev/dl/" >&2; exit 1; }
go build -o bin/flashsale ./cmd/flashsale
# The embedded Kafka broker keeps its log and offsets across runs (KAFKA_EMBEDDED_DIR= for memory).
export KAFKA_EMBEDDED_DIR="${KAFKA_EMBEDDED_DIR-var/kafka}"
echo "Flashsale on $(http_url "${HTTP_ADDR:-}")  (admin: ${ADMIN_EMAIL:-admin@flashsale.local})" >&2
exec ./bin/flashsale all
