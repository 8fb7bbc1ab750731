#!/usr/bin/env bash
# Runs every check and test: services up, generated code fresh, vet and linters (Go, workflows,
# container files), the alert rules and their unit tests (promtool), the OpenAPI lint and the
# TypeScript client (against a live system), the test suite against the real PostgreSQL and
# Redis, the Redis tests again on a local Redis Cluster and Sentinel group, the PostgreSQL tests
# again through pgBouncer, fuzzing, and the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1;32m== %s\033[0m\n' "$*" >&2; }

step "services"
# Already answering (CI's service containers, a devcontainer's compose services): start nothing.
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && redis-cli -h 127.0.0.1 ping 2>/dev/null | grep -q PONG; then
  echo "PostgreSQL and Redis answer on 127.0.0.1" >&2
else
  ./scripts/services.sh
fi

source scripts/lib/tools.sh
# What the steps below use besides Go: a C compiler for cgo (confluent-kafka-go), Node/npm (spec
# lint, TypeScript client, browser tests), jq and curl (README tour), python3 (scripts/lib).
need gcc:gcc,libc6-dev node:nodejs npm:npm jq:jq curl:curl python3:python3

step "generated code is up to date"
generated() { find internal/adapters/http/api internal/adapters/postgres/sqlcdb internal/adapters/generated.sha256 -name '*.go' -type f -o -name '*.sha256' | sort | xargs sha256sum; }
before=$(generated)
./scripts/generate.sh --if-changed
if [ "$before" != "$(generated)" ]; then
  echo "Generated code was stale: it has been regenerated; review and commit it." >&2
  git --no-pager diff --stat -- internal/adapters/http/api internal/adapters/postgres/sqlcdb >&2 || true
  exit 1
fi

step "gofmt and go vet"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "not gofmt-ed: $unformatted" >&2; exit 1; fi
go vet ./...

step "golangci-lint (.golangci.yml) and actionlint (.github/workflows)"
# pinned NAME PACKAGE VERSION: the tool at that version, built with `go install` if missing.
pinned() {
  local bin
  bin=$(go env GOPATH)/bin/$1
  if ! "$bin" --version 2>/dev/null | grep -q "${3#v}"; then GOBIN=$(go env GOPATH)/bin go install "$2@$3"; fi
  echo "$bin"
}
"$(pinned golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint v2.15.0)" run ./...
"$(pinned actionlint github.com/rhysd/actionlint/cmd/actionlint v1.7.12)"

step "compose files and Dockerfiles (compose-go, BuildKit lint; no Docker engine needed)"
(cd tools/containercheck && go run . -root ../..)

step "alert rules: promtool check rules and promtool test rules (./scripts/promtool.sh)"
./scripts/promtool.sh

step "OpenAPI lint (Redocly) and the TypeScript client against a live system"
./scripts/lint-spec.sh
./scripts/client-test.sh
./scripts/readme-tour-test.sh

step "tests (real PostgreSQL and Redis)"
go test -race -count=1 -timeout 15m "$@" ./...

step "the Redis tests on a Redis Cluster and a Sentinel group (./scripts/redis-topologies-test.sh)"
./scripts/redis-topologies-test.sh

step "the PostgreSQL adapter and end-to-end tests through pgBouncer, transaction pooling (./scripts/pgbouncer.sh)"
# Their databases are created and migrated on the server; the systems and stores under test reach
# them through pgBouncer, in the exec mode its version takes (1.18: no named prepared statements).
# No -race (the run above has it on the same code); -short skips a wait for an Asynq lease.
if ! ./scripts/pgbouncer.sh running; then trap './scripts/pgbouncer.sh stop' EXIT; fi
pooler=$(./scripts/pgbouncer.sh start)
began=$SECONDS
TEST_DATABASE_POOLER_URL=$pooler DB_QUERY_EXEC_MODE=cache_describe \
  go test -count=1 -short ./internal/adapters/postgres/ ./internal/e2e/
echo "through pgBouncer: passed in $((SECONDS - began)) s" >&2

step "fault injection, the short subset (./scripts/chaos.sh --short; the full set: docs/reliability.md)"
./scripts/chaos.sh --short --quiet

step "fuzzing (10s per target)"
go test -run='^$' -fuzz='^FuzzVerify$' -fuzztime=10s ./internal/adapters/jwt
go test -run='^$' -fuzz='^FuzzRequestDecoding$' -fuzztime=10s ./internal/adapters/http

step "browser tests of the storefront and the API docs (headless Chromium)"
./scripts/browser-test.sh
