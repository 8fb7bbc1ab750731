#!/usr/bin/env bash
# Regenerates everything generated from a source: the HTTP server and models from
# openapi/flashsale.yaml (oapi-codegen) and the database code from db/ (sqlc). The generators
# are Go tools pinned in tools/go.mod.
set -euo pipefail
cd "$(dirname "$0")/.."
go generate ./...
