#!/usr/bin/env bash
# A local Redis Cluster on loopback: 3 masters and 3 replicas on 127.0.0.1:7000-7005, no
# persistence, its files in $REDIS_CLUSTER_DIR (default: a directory under $TMPDIR). For the test
# command (scripts/test.sh runs the Redis tests against it) and for trying the system on a cluster.
# Installs redis-server with apt-get if missing, as scripts/services.sh does.
#
#   ./scripts/redis-cluster.sh start   # starts it unless it is up; prints its REDIS_URL
#   ./scripts/redis-cluster.sh url     # prints its REDIS_URL
#   ./scripts/redis-cluster.sh stop    # stops its servers and removes their files
set -euo pipefail

dir=${REDIS_CLUSTER_DIR:-${TMPDIR:-/tmp}/flashsale-redis-cluster}
ports=(7000 7001 7002 7003 7004 7005)
url="redis://127.0.0.1:7000?addr=127.0.0.1:7001&addr=127.0.0.1:7002"

log() { printf '\033[1;34m[redis-cluster]\033[0m %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# ok: every node sees all slots served and 6 nodes, and every replica is in sync with its master.
ok() {
  local p info
  for p in "${ports[@]}"; do
    info=$(redis-cli -p "$p" cluster info 2>/dev/null) || return 1
    grep -q 'cluster_state:ok' <<<"$info" && grep -q 'cluster_known_nodes:6' <<<"$info" || return 1
    info=$(redis-cli -p "$p" info replication 2>/dev/null) || return 1
    grep -q 'role:master' <<<"$info" || grep -q 'master_link_status:up' <<<"$info" || return 1
  done
}

stop() {
  local p
  for p in "${ports[@]}"; do
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
  stop # a half-made cluster from an earlier run: start afresh
  local p addrs=()
  for p in "${ports[@]}"; do
    mkdir -p "$dir/$p"
    redis-server --port "$p" --bind 127.0.0.1 --protected-mode no --dir "$dir/$p" \
      --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
      --save "" --appendonly no --repl-diskless-sync-delay 0 \
      --daemonize yes --logfile "$dir/$p/redis.log" --pidfile "$dir/$p/redis.pid"
    addrs+=("127.0.0.1:$p")
  done
  for p in "${ports[@]}"; do
    for _ in $(seq 1 50); do redis-cli -p "$p" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
  done
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 ||
    { cat "$dir/create.log" >&2; exit 1; }
  for _ in $(seq 1 300); do ok && break; sleep 0.1; done
  ok || { log "the cluster did not come up; logs in $dir"; exit 1; }
  log "3 masters + 3 replicas on 127.0.0.1:7000-7005"
  echo "$url"
}

case ${1:-} in
start) start ;;
stop) stop ;;
url) echo "$url" ;;
*) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
