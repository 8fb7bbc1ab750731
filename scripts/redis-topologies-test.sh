#!/usr/bin/env bash
# Runs the Redis tests against a local Redis Cluster and a Sentinel group (scripts/redis-cluster.sh,
# scripts/redis-sentinel.sh; stopped when done): the Redis adapter's package (the inventory and
# purchase contracts, sessions, rate limits, sale cache, node leases, WAIT) and the end-to-end
# tests but those about Kafka and PostgreSQL failures (the shopper journey, the 5,000 attempts,
# idempotency, live events across nodes and processes, the Asynq worker, scheduler and dead
# letters, Redis losing a sale). Fails on any failure, or if a server counted a CROSSSLOT error or
# a test logged one. Logs: test-results/redis-<topology>.log. Arguments go to go test.
set -euo pipefail
cd "$(dirname "$0")/.."

# Kafka, PostgreSQL and HTTP-only tests, and those on private servers: the single-node run covers them.
skip='Broker|DatabaseOutage|Redelivered|EmailOutage|Poison|FansOut|Malformed|Readiness|RateLimitAcrossProcesses|TLSInEachForm|PurchaseWaitsForAReplica|CheckAOF|ReadinessPingsEveryMaster'
declare -A ports=([cluster]="7000 7001 7002 7003 7004 7005" [sentinel]="7100 7101 7102")

trap './scripts/redis-cluster.sh stop; ./scripts/redis-sentinel.sh stop' EXIT
mkdir -p test-results
for topology in cluster sentinel; do
  began=$SECONDS
  url=$(./scripts/redis-$topology.sh start)
  for p in ${ports[$topology]}; do redis-cli -p "$p" config resetstat >/dev/null; done
  log=test-results/redis-$topology.log
  echo "TEST_REDIS_URL=$url" >&2
  # No -race: the single-node run has it on the same code; here it doubled the CPU the
  # 5,000-attempt test needs beside six redis-servers on two cores.
  TEST_REDIS_URL=$url go test -count=1 -short -skip "$skip" "$@" ./internal/adapters/redis/... ./internal/e2e/ \
    >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
  grep -E '^(ok|FAIL|---)' "$log" >&2 || true
  if grep -q CROSSSLOT "$log"; then
    grep CROSSSLOT "$log" | head >&2
    echo "CROSSSLOT on the $topology: see $log" >&2
    exit 1
  fi
  for p in ${ports[$topology]}; do
    if redis-cli -p "$p" info errorstats | grep -q CROSSSLOT; then
      echo "the $topology's server on $p answered CROSSSLOT: $(redis-cli -p "$p" info errorstats | grep CROSSSLOT)" >&2
      exit 1
    fi
  done
  echo "$topology: passed in $((SECONDS - began)) s, no CROSSSLOT" >&2
done
