#!/usr/bin/env bash
# Makes sure PostgreSQL and Redis run on 127.0.0.1 (installing them with apt-get if missing) and
# that the flashsale database exists. Safe to run again and again.
set -euo pipefail

log() { printf '\033[1;34m[services]\033[0m %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  log "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }

# --- PostgreSQL -------------------------------------------------------------------------------
fresh_pg=0
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  apt_install postgresql postgresql-client
  fresh_pg=1
fi
if ! pg_up; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  if [ "$fresh_pg" = 1 ]; then
    # A fresh install asks for passwords on TCP; local development trusts the loopback only.
    hba=/etc/postgresql/$version/main/pg_hba.conf
    as_root sed -i -E 's/^(host\s+all\s+all\s+(127\.0\.0\.1\/32|::1\/128)\s+)\S+/\1trust/' "$hba"
  fi
  log "starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 1 50); do pg_up && break; sleep 0.2; done
fi
pg_up || { log "PostgreSQL does not answer on 127.0.0.1:5432"; exit 1; }

# --- Redis ------------------------------------------------------------------------------------
if ! command -v redis-server >/dev/null 2>&1; then
  apt_install redis-server
fi
if ! redis_up; then
  log "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null
  for _ in $(seq 1 50); do redis_up && break; sleep 0.2; done
fi
redis_up || { log "Redis does not answer on 127.0.0.1:6379"; exit 1; }

# --- The database -----------------------------------------------------------------------------
db=${FLASHSALE_DB:-flashsale}
if ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
  log "creating database $db"
  psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $db"
fi
log "PostgreSQL and Redis are up"
