#!/usr/bin/env bash
# A local pgBouncer in transaction pooling mode on 127.0.0.1:6432, in front of the PostgreSQL of
# scripts/services.sh on 127.0.0.1:5432: every database (a `*` entry, so the tests' fresh
# databases too), users listed in its auth file (postgres), no password (loopback, development
# only; the server trusts the loopback too). Installs pgbouncer (Debian's package) with apt-get if
# missing. Its configuration, pid file, log and socket live in $PGBOUNCER_DIR (default: a
# directory under $TMPDIR) and belong to it; the package's own service is left alone. Safe to
# run again: a running instance is reloaded with the configuration written again, not restarted.
#
#   ./scripts/pgbouncer.sh start   # starts it unless it runs; prints its DATABASE_URL (database flashsale)
#   ./scripts/pgbouncer.sh url     # prints it
#   ./scripts/pgbouncer.sh running # exit status 0 if this instance runs
#   ./scripts/pgbouncer.sh stop    # stops it and removes its directory
#
# Debian 12's pgBouncer is 1.18: protocol-level prepared statements (max_prepared_statements)
# came in 1.21, so pgx must not use named prepared statements through it:
# DB_QUERY_EXEC_MODE=cache_describe (README, "PostgreSQL through pgBouncer").
set -euo pipefail

dir=${PGBOUNCER_DIR:-${TMPDIR:-/tmp}/flashsale-pgbouncer}
port=${PGBOUNCER_PORT:-6432}
url="postgres://postgres@127.0.0.1:$port/flashsale?sslmode=disable"

log() { printf '\033[1;34m[pgbouncer]\033[0m %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

pid() { [ -s "$dir/pgbouncer.pid" ] && cat "$dir/pgbouncer.pid"; }
running() { local p; p=$(pid) && kill -0 "$p" 2>/dev/null; }
# answers: a query goes through to PostgreSQL.
answers() { psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc 'SELECT 1' 2>/dev/null | grep -q 1; }
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

config() {
  cat <<EOF
;; Written by scripts/pgbouncer.sh: a development pgBouncer, loopback only.
[databases]
* = host=127.0.0.1 port=5432

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir = $dir
pidfile = $dir/pgbouncer.pid
logfile = $dir/pgbouncer.log
auth_type = trust
auth_file = $dir/userlist.txt
admin_users = postgres
stats_users = postgres
;; A server connection is a client's for one transaction only: what the app runs behind it.
pool_mode = transaction
;; Per database and user. Every process's pool (DB_MAX_CONNS) is a client here; many clients
;; share these server connections.
default_pool_size = 20
max_client_conn = 2000
;; Sent by some drivers (not pgx); pgBouncer refuses startup parameters it does not know.
ignore_startup_parameters = extra_float_digits
;; Databases the tests create and drop come and go: forget their pools soon.
autodb_idle_timeout = 60
server_idle_timeout = 60
log_connections = 0
log_disconnections = 0
EOF
}

stop() {
  local p
  if p=$(pid) && kill -0 "$p" 2>/dev/null; then
    kill -TERM "$p"
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$dir"
}

start() {
  if ! command -v pgbouncer >/dev/null 2>&1; then
    log "installing pgbouncer"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null
    # Where systemd runs, installing starts the package's own service on 6432: this script runs
    # an instance of its own instead.
    if command -v systemctl >/dev/null 2>&1; then as_root systemctl disable --now pgbouncer >/dev/null 2>&1 || true; fi
  fi
  mkdir -p "$dir"
  config >"$dir/pgbouncer.ini.new"
  printf '"postgres" ""\n' >"$dir/userlist.txt"
  # pgBouncer refuses to run as root: as root it runs as postgres (-u), which owns its files.
  local user=()
  if [ "$(id -u)" = 0 ]; then
    user=(-u postgres)
    chown -R postgres "$dir"
  fi
  if running; then
    if ! cmp -s "$dir/pgbouncer.ini.new" "$dir/pgbouncer.ini"; then
      mv "$dir/pgbouncer.ini.new" "$dir/pgbouncer.ini"
      kill -HUP "$(pid)" # RELOAD: the new settings, clients stay connected
      log "configuration reloaded"
    fi
    rm -f "$dir/pgbouncer.ini.new"
  else
    if port_taken; then
      log "127.0.0.1:$port is taken by something else (the pgbouncer package's own service?)"
      exit 1
    fi
    mv "$dir/pgbouncer.ini.new" "$dir/pgbouncer.ini"
    [ "$(id -u)" = 0 ] && chown -R postgres "$dir"
    pgbouncer -d "${user[@]}" "$dir/pgbouncer.ini" >>"$dir/start.log" 2>&1 ||
      { cat "$dir/start.log" "$dir/pgbouncer.log" >&2 2>/dev/null; exit 1; }
  fi
  for _ in $(seq 1 50); do answers && break; sleep 0.1; done
  if ! answers; then
    log "pgBouncer does not pass queries to PostgreSQL on 127.0.0.1:5432; log: $dir/pgbouncer.log"
    tail -n 20 "$dir/pgbouncer.log" >&2 2>/dev/null || true
    exit 1
  fi
  log "$(pgbouncer --version | head -n 1), transaction pooling, on 127.0.0.1:$port (files: $dir)"
  echo "$url"
}

case ${1:-} in
start) start ;;
stop) stop ;;
url) echo "$url" ;;
running) running ;;
*) echo "usage: $0 start|stop|url|running" >&2; exit 2 ;;
esac
