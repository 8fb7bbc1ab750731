#!/usr/bin/env bash
# Sets up and runs the whole system locally: PostgreSQL and Redis (installed and started if
# needed), the database, migrations, then `flashsale all` on :8080. Ctrl-C stops it gracefully.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/services.sh
command -v go >/dev/null || { echo "Go 1.26 or newer is needed: https://go.dev/dl/" >&2; exit 1; }
go build -o bin/flashsale ./cmd/flashsale
echo "Flashsale on http://localhost${HTTP_ADDR:-:8080}  (admin: ${ADMIN_EMAIL:-admin@flashsale.local})" >&2
exec ./bin/flashsale all
