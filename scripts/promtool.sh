#!/usr/bin/env bash
# Checks the Prometheus alert rules (deploy/prometheus/alerts.yml) and runs their unit tests
# (alerts_test.yml) with promtool, installing Debian's prometheus package when it is missing;
# and that every query of the Grafana dashboard (deploy/grafana/flashsale.json) is valid PromQL
# (each made a recording rule for promtool to parse, the dashboard's $variables filled in).
# That the rules and the Grafana dashboard use only metrics the system exports is checked by a
# Go test (internal/e2e, TestMetricsCountABurst).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/tools.sh
need promtool:prometheus python3:python3
promtool check rules deploy/prometheus/alerts.yml
(cd deploy/prometheus && promtool test rules alerts_test.yml)

queries=$(mktemp --suffix=.yml)
trap 'rm -f "$queries"' EXIT
python3 - deploy/grafana/flashsale.json >"$queries" <<'PY'
import json, re, sys
board = json.load(open(sys.argv[1]))
exprs = []
def walk(panels):
    for p in panels:
        exprs.extend(t["expr"] for t in p.get("targets", []) if t.get("expr"))
        walk(p.get("panels", []))  # a row's panels
walk(board["panels"])
for v in board.get("templating", {}).get("list", []):
    q = v.get("query")
    if v.get("type") == "query" and isinstance(q, dict):
        m = re.fullmatch(r"label_values\((.+),\s*\w+\)", q["query"].strip())
        exprs.append(m.group(1) if m else q["query"])
print("groups:\n  - name: dashboard\n    rules:")
for i, e in enumerate(exprs):
    e = re.sub(r"\$\{?\w+\}?", ".*", e)
    print(f"      - record: dashboard:query{i}\n        expr: {json.dumps(e)}")
PY
echo "the dashboard's queries:"
promtool check rules "$queries"
