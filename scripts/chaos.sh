#!/usr/bin/env bash
# Runs the fault-injection suite (`flashsale chaos`): private PostgreSQL and Redis servers per
# fault, the system as child processes, a bounded load, each fault injected, every invariant
# counted. Exits non-zero on any violation. Arguments go to `flashsale chaos`, e.g.
#
#   ./scripts/chaos.sh                        # every fault (docs/reliability.md)
#   ./scripts/chaos.sh --short                # the quick subset (about a minute)
#   ./scripts/chaos.sh --faults pg-stop,redis-restart
#   ./scripts/chaos.sh --list
#
# It needs the PostgreSQL server binaries (initdb, pg_ctl) and redis-server, and installs them
# with apt-get if missing, as scripts/services.sh does; it does not use the shared servers on
# 5432 and 6379. As root, PostgreSQL runs as the user `postgres` (initdb refuses root).
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1;34m[chaos]\033[0m %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  log "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  apt_install postgresql postgresql-client
fi
if ! command -v redis-server >/dev/null 2>&1; then
  apt_install redis-server
fi

go build -o bin/flashsale ./cmd/flashsale
exec ./bin/flashsale chaos "$@"
