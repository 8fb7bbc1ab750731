#!/usr/bin/env bash
# Checks the TypeScript client in clients/typescript: installs it from its lockfile, checks that
# its generated types match openapi/flashsale.yaml, type-checks it (strict), and runs its test
# against a freshly started system (private database, Redis prefix and port: scripts/lib/system.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/system.sh

step() { printf '\033[1;34m[client]\033[0m %s\n' "$*" >&2; }
client() { (cd clients/typescript && "$@"); }

step "npm ci"
client npm ci --no-audit --no-fund --silent
step "generated types are up to date (npm run check-stale)"
client npm run --silent check-stale
step "type-check (npm run typecheck)"
client npm run --silent typecheck
step "live test through the client (npm test)"
start_system client
client npm test --silent
