#!/usr/bin/env bash
# Lints openapi/flashsale.yaml with Redocly CLI (pinned in tools/openapi/package.json; rules and
# the reasons for the ones turned off in redocly.yaml), and checks that the Swagger UI assets
# embedded for /docs are the pinned swagger-ui-dist's.
set -euo pipefail
cd "$(dirname "$0")/.."
(cd tools/openapi && npm ci --no-audit --no-fund --silent)
# --format=stylish: one line per problem with its location; the CLI sends no telemetry
# (telemetry: off in redocly.yaml, and the variable for good measure).
REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
  tools/openapi/node_modules/.bin/redocly lint --config redocly.yaml --format=stylish openapi/flashsale.yaml
./scripts/update-swagger-ui.sh --check
