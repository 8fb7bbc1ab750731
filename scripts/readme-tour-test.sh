#!/usr/bin/env bash
# Runs the README's "A tour with curl", pasted as one block, against a fresh system (its own
# database, Redis prefix and port, scripts/lib/system.sh) and checks that it ends with the order
# confirmed and 98 left, as the README says.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/system.sh

# The first sh block after the heading, with this system's address and admin.
tour=$(awk '/^## A tour with curl/ {t=1} t && /^```sh/ {b=1; next} b && /^```/ {exit} b' README.md)
[ -n "$tour" ] || { echo "README.md: no sh block under '## A tour with curl'" >&2; exit 1; }
start_system tour
tour=${tour//http:\/\/localhost:8080/$BASE_URL}
tour=${tour//admin@flashsale.local/$ADMIN_EMAIL}
tour=${tour//admin-dev-password/$ADMIN_PASSWORD}

out=$(bash -c "$tour" 2>&1) || { echo "the tour failed:" >&2; echo "$out" >&2; exit 1; }
if ! grep -qx 'order: confirmed' <<<"$out" || ! grep -q '"remaining":98' <<<"$out"; then
  echo "the README tour did not end with 'order: confirmed' and 98 left:" >&2
  echo "$out" >&2
  exit 1
fi
echo "README tour: order confirmed, 98 left" >&2
