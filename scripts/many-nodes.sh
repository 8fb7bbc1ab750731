#!/usr/bin/env bash
# Many nodes, one sale: the scaled-out topology of docs/architecture.md ("A scaled-out
# deployment") on this machine, then a load-test burst through both API nodes, verified.
#
#   Redis Cluster      scripts/redis-cluster.sh (3 masters + 3 replicas, 127.0.0.1:7000-7005)
#   pgBouncer          scripts/pgbouncer.sh (transaction pooling, 127.0.0.1:6432)
#   Kafka              flashsale broker (the embedded broker, its own process)
#   flashsale serve    x2   (API nodes, each on its own port)
#   flashsale worker   x2   (order workers sharing one Asynq queue; reconciler, outbox relay)
#   flashsale consumer email|analytics|inventory-sync   x2 each (two members per group)
#
# Every role reaches PostgreSQL through pgBouncer (DB_QUERY_EXEC_MODE=cache_describe); the
# migration goes to the server itself (DATABASE_MIGRATE_URL). The run gets a fresh database, key
# prefix, queues, mail folder and free ports, all removed afterwards; a Redis Cluster or pgBouncer
# it started is stopped too. Logs: test-results/many-nodes/.
#
# Verified after the burst: `flashsale loadtest` (exactly the stock sold, 0 oversold, 0
# undersold, one order row per 202, none without one, no duplicate idempotency key, nobody above
# the limit), then from PostgreSQL: each order id and each (buyer, idempotency key) once, one
# order.confirmed event per order, each consumer group applied each event once (its effects:
# sale_stats, sale_counters, the mails), and both API nodes accepted and both workers wrote
# orders (flashsale_order_tasks_total of each).
#
#   ./scripts/many-nodes.sh [--users 2000] [--stock 200] [--limit 1] [--redis cluster|single] [--keep]
#
# --redis single uses the Redis of scripts/services.sh (127.0.0.1:6379) instead of a cluster;
# --keep leaves the topology running after the verification until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

users=2000 stock=200 limit=1 redis=cluster keep=0
while [ $# -gt 0 ]; do
  case $1 in
  --users) users=$2; shift 2 ;;
  --stock) stock=$2; shift 2 ;;
  --limit) limit=$2; shift 2 ;;
  --redis) redis=$2; shift 2 ;;
  --keep) keep=1; shift ;;
  *) echo "usage: $0 [--users N] [--stock N] [--limit N] [--redis cluster|single] [--keep]" >&2; exit 2 ;;
  esac
done

log() { printf '\033[1;34m[many-nodes]\033[0m %s\n' "$*" >&2; }
fail() { printf '\033[1;31m[many-nodes] FAILED:\033[0m %s\n' "$*" >&2; exit 1; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
psql_direct() { psql -h 127.0.0.1 -p 5432 -U postgres -d "$db" -v ON_ERROR_STOP=1 -tAc "$1"; }

began=$SECONDS
run=$(date +%s)$$
db=fs_many_$run
logs=test-results/many-nodes
mkdir -p "$logs"
rm -f "$logs"/*.log "$logs"/loadtest.json
work=$(mktemp -d)
pids=() names=()
started_cluster=0 started_pgbouncer=0 created_db=0

cleanup() {
  local i
  # The roles first, gracefully, then the broker they talk to (the first process started).
  for i in "${!pids[@]}"; do [ "$i" = 0 ] || kill -TERM "${pids[$i]}" 2>/dev/null || true; done
  for i in "${!pids[@]}"; do [ "$i" = 0 ] || wait "${pids[$i]}" 2>/dev/null || true; done
  if [ "${#pids[@]}" -gt 0 ]; then kill -TERM "${pids[0]}" 2>/dev/null || true; wait "${pids[0]}" 2>/dev/null || true; fi
  if [ "$created_db" = 1 ]; then
    psql -h 127.0.0.1 -p 5432 -U postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  if [ "$started_cluster" = 1 ]; then
    ./scripts/redis-cluster.sh stop
  elif [ -n "${redis_ports:-}" ]; then
    local p pattern
    for p in $redis_ports; do
      for pattern in "$prefix:*" "rate:$prefix:*" "asynq:{$queue}:*" "asynq:{$queue-sales}:*"; do
        redis-cli -p "$p" --scan --pattern "$pattern" | xargs -r -n 100 redis-cli -p "$p" unlink >/dev/null 2>&1 || true
      done
      redis-cli -p "$p" srem asynq:queues "$queue" "$queue-sales" >/dev/null 2>&1 || true
    done
  fi
  if [ "$started_pgbouncer" = 1 ]; then ./scripts/pgbouncer.sh stop; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Backends ---------------------------------------------------------------------------------
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || ! redis-cli -h 127.0.0.1 ping 2>/dev/null | grep -q PONG; then
  ./scripts/services.sh
fi
case $redis in
cluster)
  if ! redis-cli -p 7000 cluster info 2>/dev/null | grep -q cluster_state:ok; then started_cluster=1; fi
  redis_url=$(./scripts/redis-cluster.sh start)
  redis_ports=$(redis-cli -p 7000 cluster nodes | awk '/master/ { split($2, a, "[:@]"); print a[2] }')
  ;;
single)
  redis_url=redis://127.0.0.1:6379/0
  redis_ports=6379
  ;;
*) fail "--redis must be cluster or single" ;;
esac
./scripts/pgbouncer.sh running || started_pgbouncer=1
./scripts/pgbouncer.sh start >/dev/null
go build -o bin/flashsale ./cmd/flashsale

psql -h 127.0.0.1 -p 5432 -U postgres -qc "CREATE DATABASE $db"
created_db=1
prefix=fsmany-$run queue=orders-many-$run
kport=$(free_port)
export APP_ENV=test LOG_LEVEL=info BCRYPT_COST=4 \
  DATABASE_URL="postgres://postgres@127.0.0.1:6432/$db?sslmode=disable" DB_QUERY_EXEC_MODE=cache_describe \
  DATABASE_MIGRATE_URL="postgres://postgres@127.0.0.1:5432/$db?sslmode=disable" \
  REDIS_URL="$redis_url" REDIS_PREFIX="$prefix" ORDER_QUEUE="$queue" SALE_EVENTS_QUEUE="$queue-sales" \
  KAFKA_BROKERS="127.0.0.1:$kport" KAFKA_EMBEDDED_PORT="$kport" MAIL_DIR="$work/mail" \
  TRUSTED_PROXIES=127.0.0.1/32,::1/128 ADMIN_EMAIL=admin@many.test ADMIN_PASSWORD=many-admin-password
unset HTTP_ADDR ADMIN_ADDR PPROF_ADDR # each process gets its own
log "database $db through pgBouncer (cache_describe), Redis $redis_url, broker 127.0.0.1:$kport"
./bin/flashsale migrate >"$logs/migrate.log" 2>&1 || { cat "$logs/migrate.log" >&2; fail "migrate"; }

# --- Roles ------------------------------------------------------------------------------------
# start NAME ENV... -- ARGS...: one process of bin/flashsale, logging to $logs/NAME.log.
start() {
  local name=$1 env=()
  shift
  while [ "$1" != -- ]; do env+=("$1"); shift; done
  shift
  env "${env[@]}" ./bin/flashsale "$@" >"$logs/$name.log" 2>&1 &
  pids+=($!) names+=("$name")
}
# ready URL NAME: until URL answers 200 (60 s at most), or the process is gone.
ready() {
  local url=$1 name=$2 i
  for _ in $(seq 1 300); do
    curl -fs -o /dev/null "$url" && return 0
    for i in "${!names[@]}"; do
      if [ "${names[$i]}" = "$name" ] && ! kill -0 "${pids[$i]}" 2>/dev/null; then
        tail -n 30 "$logs/$name.log" >&2
        fail "$name exited"
      fi
    done
    sleep 0.2
  done
  tail -n 30 "$logs/$name.log" >&2
  fail "$name is not ready at $url"
}

start broker -- broker
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$kport") 2>/dev/null && break; sleep 0.1; done

declare -A admin
apis=()
# Both API nodes create the first admin if it is missing (the loser of that race finds it).
for node in 1 2; do
  port=$(free_port)
  start "serve-$node" HTTP_ADDR="127.0.0.1:$port" -- serve
  apis+=("http://127.0.0.1:$port")
done
for role in worker consumer-email consumer-analytics consumer-inventory-sync; do
  for node in 1 2; do
    port=$(free_port)
    admin[$role-$node]=http://127.0.0.1:$port
    # shellcheck disable=SC2086 # consumer-<group> becomes `consumer <group>`
    start "$role-$node" ADMIN_ADDR="127.0.0.1:$port" -- ${role/-/ }
  done
done
for node in 1 2; do ready "${apis[$((node - 1))]}/readyz" "serve-$node"; done
for name in "${!admin[@]}"; do
  path=/healthz
  [[ $name == worker-* ]] && path=/readyz
  ready "${admin[$name]}$path" "$name"
done
log "up in $((SECONDS - began)) s: broker, serve x2 (${apis[*]}), worker x2, consumer email|analytics|inventory-sync x2 each"

# --- The burst --------------------------------------------------------------------------------
log "burst: $users users, stock $stock, limit $limit, through both API nodes"
burst_began=$SECONDS
./bin/flashsale loadtest --url "$(IFS=,; echo "${apis[*]}")" \
  --database-url "$DATABASE_MIGRATE_URL" --admin-email "$ADMIN_EMAIL" --admin-password "$ADMIN_PASSWORD" \
  --users "$users" --stock "$stock" --limit "$limit" --json "$logs/loadtest.json" --quiet ||
  fail "the load test found problems (above; $logs/loadtest.json)"
burst_took=$((SECONDS - burst_began))

# --- PostgreSQL, the consumers and each node's share ------------------------------------------
sale=$(psql_direct "SELECT id FROM sales ORDER BY created_at DESC LIMIT 1")
read -r orders units ids keys < <(psql_direct "SELECT count(*), COALESCE(sum(quantity), 0), count(DISTINCT id),
  count(DISTINCT (user_id, idempotency_key)) FROM orders WHERE sale_id = '$sale' AND status = 'confirmed'" | tr '|' ' ')
failed=$(psql_direct "SELECT count(*) FROM orders WHERE sale_id = '$sale' AND status <> 'confirmed'")
[ "$orders" -gt 0 ] || fail "no confirmed order"
[ "$units" -le "$stock" ] || fail "oversold: $units units sold of $stock"
[ "$ids" = "$orders" ] && [ "$keys" = "$orders" ] || fail "an order written twice: $orders rows, $ids ids, $keys (buyer, key) pairs"
[ "$failed" = 0 ] || fail "$failed orders recorded failed"
read -r events event_orders < <(psql_direct "SELECT count(*), count(DISTINCT o.key) FROM outbox o
  WHERE o.type = 'order.confirmed' AND o.key IN (SELECT id::text FROM orders WHERE sale_id = '$sale')" | tr '|' ' ')
[ "$events" = "$orders" ] && [ "$event_orders" = "$orders" ] ||
  fail "order.confirmed events: $events for $event_orders orders, want one for each of $orders"

# The consumer groups catch up within seconds: each applies each event once.
consumed() {
  psql_direct "SELECT (SELECT count(*) FROM processed_events WHERE consumer = 'flashsale-analytics') || ' ' ||
    (SELECT count(*) FROM processed_events WHERE consumer = 'flashsale-inventory-sync') || ' ' ||
    (SELECT count(*) FROM processed_events WHERE consumer = 'flashsale-email') || ' ' ||
    COALESCE((SELECT orders || ' ' || units FROM sale_stats WHERE sale_id = '$sale'), '0 0') || ' ' ||
    COALESCE((SELECT sold FROM sale_counters WHERE sale_id = '$sale'), 0)"
}
want="$orders $orders $orders $orders $units $units"
for _ in $(seq 1 300); do [ "$(consumed)" = "$want" ] && break; sleep 0.2; done
read -r p_analytics p_sync p_email stats_orders stats_units counter_sold < <(consumed)
[ "$(consumed)" = "$want" ] || fail "consumers: processed analytics $p_analytics, inventory-sync $p_sync, email $p_email;
  sale_stats $stats_orders orders / $stats_units units; sale_counters $counter_sold; want $orders orders, $units units"
mails=$(find "$work/mail" -name '*.eml' 2>/dev/null | wc -l)
mail_ids=$(find "$work/mail" -name '*.eml' -exec grep -hi '^Message-ID:' {} + 2>/dev/null | sort -u | wc -l)
[ "$mail_ids" = "$orders" ] || fail "mails: $mails files, $mail_ids distinct Message-IDs, want $orders"

written() { curl -fs "${admin[$1]}/metrics" | awk '/^flashsale_order_tasks_total\{result="written"\}/ { print $2 + 0 }'; }
w1=$(written worker-1) w2=$(written worker-2)
read -r a1 a2 < <(jq -r '.[0].runsDetail[0].nodes | map(.accepted) | @tsv' "$logs/loadtest.json")
read -r peak < <(jq -r '.[0].runsDetail[0].peakDbConnectionsInUse' "$logs/loadtest.json")
read -r p99 durable < <(jq -r '.[0].runsDetail[0] | [.latencyMs.P99, .lastOrderDurableAfterMs] | @tsv' "$logs/loadtest.json")
[ "${a1:-0}" -gt 0 ] && [ "${a2:-0}" -gt 0 ] || fail "an API node accepted nothing: ${a1:-0} and ${a2:-0}"
[ "${w1:-0}" -gt 0 ] && [ "${w2:-0}" -gt 0 ] || fail "a worker wrote nothing: ${w1:-0} and ${w2:-0}"
runs="$((w1 + w2)) task runs for $orders orders"
if [ $((w1 + w2)) -gt "$orders" ]; then
  # A task queued again (a node's lease that lapsed on a starved machine, the reconciler) finds
  # its order written: the rows and events above are the proof that none was written twice.
  runs="$runs: $((w1 + w2 - orders)) ran again and found their order written"
fi
lapsed=$(cat "$logs"/worker-*.log | grep -c 'API node died holding accepted orders' || true)
[ "$lapsed" = 0 ] || runs="$runs; API node leases taken for lapsed: $lapsed"
oversold=$(jq -r '.[0].runsDetail[0].oversoldUnits' "$logs/loadtest.json")
undersold=$(jq -r '.[0].runsDetail[0].undersoldUnits' "$logs/loadtest.json")

cat >&2 <<EOF

Many nodes, one sale: CORRECT ($users users, stock $stock, limit $limit; Redis $redis, PostgreSQL through pgBouncer)
  orders $orders ($units units), oversold $oversold, undersold $undersold, failed $failed
  each order written once: $ids order ids, $keys (buyer, key) pairs, $events order.confirmed events
  accepted through API node 1: $a1, node 2: $a2;  order tasks ended written by worker 1: $w1, worker 2: $w2
    ($runs)
  each event applied once per group: analytics $p_analytics, inventory-sync $p_sync, email $p_email ($mails mails);
    sale_stats $stats_orders orders / $stats_units units, sale_counters sold $counter_sold
  burst p99 ${p99} ms, last order durable after ${durable} ms, PostgreSQL connections in use at peak $peak
  (server side, through pgBouncer); burst and verification $burst_took s, whole run $((SECONDS - began)) s
EOF

if [ "$keep" = 1 ]; then
  log "running (APIs ${apis[*]}); Ctrl-C stops it and removes what it made"
  wait
fi
