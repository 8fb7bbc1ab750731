# Sourced (not run) by the scripts that test a running system: scripts/browser-test.sh and
# scripts/client-test.sh. From the repository root:
#
#   source scripts/lib/system.sh
#   start_system client        # a name for this run's database, Redis keys and log file
#   ... BASE_URL, ADMIN_EMAIL and ADMIN_PASSWORD are exported ...
#
# start_system builds bin/flashsale and starts `flashsale all` on a private database, Redis key
# prefix, Asynq queues and free port, waits until it is ready, and on exit stops it and removes
# everything it made. Its log is test-results/<name>-server.log.

start_system() {
  local name=$1
  local root
  root=$(pwd)
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null || ! redis-cli -h 127.0.0.1 ping 2>/dev/null | grep -q PONG; then
    ./scripts/services.sh
  fi
  go build -o bin/flashsale ./cmd/flashsale
  mkdir -p test-results
  local run port
  run=$(date +%s)$$
  SYSTEM_DB=fs_${name}_$run
  SYSTEM_LOG=$root/test-results/$name-server.log
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  SYSTEM_MAIL_DIR=$(mktemp -d)
  export APP_ENV=test LOG_LEVEL=warn HTTP_ADDR=127.0.0.1:$port BCRYPT_COST=4 \
    DATABASE_URL="postgres://postgres@127.0.0.1:5432/$SYSTEM_DB?sslmode=disable" \
    REDIS_PREFIX=fs$name-$run ORDER_QUEUE=orders-$name-$run SALE_EVENTS_QUEUE=sales-$name-$run \
    KAFKA_EMBEDDED_PORT=0 MAIL_DIR=$SYSTEM_MAIL_DIR RATE_LIMIT_AUTH_PER_MIN=0 \
    ADMIN_EMAIL=admin@$name.test ADMIN_PASSWORD=$name-admin-password
  export BASE_URL=http://127.0.0.1:$port
  trap stop_system EXIT
  psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $SYSTEM_DB"
  ./bin/flashsale all >"$SYSTEM_LOG" 2>&1 &
  SYSTEM_PID=$!
  for _ in $(seq 1 100); do
    curl -fs "$BASE_URL/readyz" >/dev/null 2>&1 && return 0
    if ! kill -0 "$SYSTEM_PID" 2>/dev/null; then
      cat "$SYSTEM_LOG" >&2
      return 1
    fi
    sleep 0.2
  done
  echo "flashsale did not become ready at $BASE_URL; log: $SYSTEM_LOG" >&2
  return 1
}

# stop_system stops the server and removes its database, Redis keys, queues and mail folder.
stop_system() {
  if [ -n "${SYSTEM_PID:-}" ]; then
    kill "$SYSTEM_PID" 2>/dev/null || true
    wait "$SYSTEM_PID" 2>/dev/null || true
  fi
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $SYSTEM_DB WITH (FORCE)" || true
  local pattern
  for pattern in "$REDIS_PREFIX:*" "rate:$REDIS_PREFIX:*" "asynq:{$ORDER_QUEUE}:*" "asynq:{$SALE_EVENTS_QUEUE}:*"; do
    redis-cli -h 127.0.0.1 --scan --pattern "$pattern" | xargs -r redis-cli -h 127.0.0.1 unlink >/dev/null
  done
  redis-cli -h 127.0.0.1 srem asynq:queues "$ORDER_QUEUE" "$SALE_EVENTS_QUEUE" >/dev/null
  rm -rf "$SYSTEM_MAIL_DIR"
}
