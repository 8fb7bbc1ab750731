#!/usr/bin/env bash
# Regenerates everything generated from a source: the HTTP server and models from
# openapi/flashsale.yaml (oapi-codegen) and the database code from db/ (sqlc). The generators
# are Go tools pinned in tools/go.mod.
#
# Each run records the SHA-256 of the generators' inputs and outputs in
# internal/adapters/generated.sha256 (committed). With --if-changed it runs the generators only
# when that record no longer matches the tree: building sqlc and oapi-codegen from a cold Go
# cache takes minutes, and an unchanged tree has nothing to regenerate.
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=internal/adapters/generated.sha256
# generator_state: one line per file the generators read (spec, configs, SQL, pinned versions,
# the go:generate lines) or write.
generator_state() {
  find openapi/flashsale.yaml sqlc.yaml db/migrations db/queries tools/go.mod tools/go.sum \
    internal/adapters/http/api internal/adapters/postgres/doc.go internal/adapters/postgres/sqlcdb \
    -type f | LC_ALL=C sort | xargs sha256sum
}

if [ "${1:-}" = --if-changed ] && [ -f "$stamp" ] && [ "$(generator_state)" = "$(cat "$stamp")" ]; then
  echo "generated code matches its inputs ($stamp): the generators are not built or run" >&2
  exit 0
fi
go generate ./...
generator_state >"$stamp"
