#!/usr/bin/env bash
# Measures what each REDIS_DURABILITY mode costs, side by side, with the load tool: for each mode
# it starts a private Redis set up for it (none: no persistence; aof: appendonly yes, appendfsync
# always; replica: a primary and one replica), runs the same bursts against a system spawned on
# it, and prints the results. Extra arguments go to `flashsale loadtest`.
#
#   ./scripts/durability-bench.sh                      # 3 bursts of 10,000 users, stock 1,000
#   ./scripts/durability-bench.sh --mode rate --rate 2000 --duration 10s --stock 100000 --limit 100
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/services.sh >/dev/null
go build -o bin/flashsale ./cmd/flashsale

work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

redis() { # port, extra args...
  local port=$1; shift
  mkdir -p "$work/$port"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$work/$port" --save "" --daemonize no \
    --repl-diskless-sync-delay 0 "$@" >"$work/$port.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 50); do redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && return; sleep 0.1; done
  echo "redis-server on $port did not start" >&2; exit 1
}

args=("$@")
[ ${#args[@]} -gt 0 ] || args=(--users 10000 --stock 1000 --runs 3)

redis 6401 --appendonly no
redis 6402 --appendonly yes --appendfsync always
redis 6403 --appendonly no
redis 6404 --appendonly no --replicaof 127.0.0.1 6403
for _ in $(seq 1 100); do redis-cli -p 6403 info replication | grep -q 'state=online' && break; sleep 0.1; done

for mode in none aof replica; do
  case $mode in
    none) port=6401 ;;
    aof) port=6402 ;;
    replica) port=6403 ;;
  esac
  echo "=== REDIS_DURABILITY=$mode (redis on $port)"
  REDIS_DURABILITY=$mode ./bin/flashsale loadtest --quiet --redis-url "redis://127.0.0.1:$port/0" \
    --json "$work/$mode.json" "${args[@]}"
done
