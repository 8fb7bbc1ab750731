#!/usr/bin/env bash
# Checks the Prometheus alert rules (deploy/prometheus/alerts.yml) and runs their unit tests
# (alerts_test.yml) with promtool, installing Debian's prometheus package when it is missing.
# That the rules and the Grafana dashboard use only metrics the system exports is checked by a
# Go test (internal/e2e, TestMetricsCountABurst).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/tools.sh
need promtool:prometheus
promtool check rules deploy/prometheus/alerts.yml
(cd deploy/prometheus && promtool test rules alerts_test.yml)
