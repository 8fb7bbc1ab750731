#!/usr/bin/env bash
# A local Redis Sentinel group on loopback: a master on 127.0.0.1:7100, 2 replicas on 7101-7102 and
# 3 sentinels on 7200-7202 watching it as "flashsale" (quorum 2), no persistence, its files in
# $REDIS_SENTINEL_DIR (default: a directory under $TMPDIR). For the test command (scripts/test.sh
# runs the Redis tests against it) and for trying the system on Sentinel. Installs redis-server
# with apt-get if missing, as scripts/services.sh does (sentinels are `redis-server --sentinel`).
#
#   ./scripts/redis-sentinel.sh start   # starts it unless it is up; prints its REDIS_URL
#   ./scripts/redis-sentinel.sh url     # prints its REDIS_URL
#   ./scripts/redis-sentinel.sh stop    # stops its servers and removes their files
set -euo pipefail

dir=${REDIS_SENTINEL_DIR:-${TMPDIR:-/tmp}/flashsale-redis-sentinel}
servers=(7100 7101 7102)
sentinels=(7200 7201 7202)
url="redis://127.0.0.1:7200/0?master_name=flashsale&addr=127.0.0.1:7201&addr=127.0.0.1:7202"

log() { printf '\033[1;34m[redis-sentinel]\033[0m %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# ok: every sentinel knows the master, its 2 replicas and the 2 other sentinels, and the replicas
# are in sync.
ok() {
  local p info
  for p in "${sentinels[@]}"; do
    info=$(redis-cli -p "$p" sentinel master flashsale 2>/dev/null | paste -sd' ') || return 1
    grep -Eq '(^| )num-slaves 2( |$)' <<<"$info" && grep -Eq '(^| )num-other-sentinels 2( |$)' <<<"$info" || return 1
  done
  for p in "${servers[@]}"; do
    info=$(redis-cli -p "$p" info replication 2>/dev/null) || return 1
    grep -q 'role:master' <<<"$info" || grep -q 'master_link_status:up' <<<"$info" || return 1
  done
}

stop() {
  local p
  for p in "${sentinels[@]}" "${servers[@]}"; do
    redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true
  done
  rm -rf "$dir"
}

start() {
  if ! command -v redis-server >/dev/null 2>&1; then
    log "installing redis-server"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
  if ok; then
    echo "$url"
    return
  fi
  stop # a half-made group from an earlier run: start afresh
  local p
  for p in "${servers[@]}"; do
    mkdir -p "$dir/$p"
    local replicaof=()
    [ "$p" = "${servers[0]}" ] || replicaof=(--replicaof 127.0.0.1 "${servers[0]}")
    redis-server --port "$p" --bind 127.0.0.1 --protected-mode no --dir "$dir/$p" \
      --save "" --appendonly no --repl-diskless-sync-delay 0 "${replicaof[@]}" \
      --daemonize yes --logfile "$dir/$p/redis.log" --pidfile "$dir/$p/redis.pid"
  done
  for p in "${sentinels[@]}"; do
    mkdir -p "$dir/$p"
    # A sentinel rewrites its configuration file: each gets its own.
    cat >"$dir/$p/sentinel.conf" <<EOF
port $p
bind 127.0.0.1
protected-mode no
dir $dir/$p
daemonize yes
logfile $dir/$p/sentinel.log
pidfile $dir/$p/sentinel.pid
sentinel monitor flashsale 127.0.0.1 ${servers[0]} 2
sentinel down-after-milliseconds flashsale 2000
sentinel failover-timeout flashsale 10000
sentinel parallel-syncs flashsale 1
EOF
    redis-server "$dir/$p/sentinel.conf" --sentinel
  done
  for _ in $(seq 1 300); do ok && break; sleep 0.1; done
  ok || { log "the group did not come up; logs in $dir"; exit 1; }
  log "master 127.0.0.1:7100, replicas 7101-7102, sentinels 7200-7202 (master name flashsale)"
  echo "$url"
}

case ${1:-} in
start) start ;;
stop) stop ;;
url) echo "$url" ;;
*) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
