#!/usr/bin/env bash
# Copies Swagger UI's assets from the npm package swagger-ui-dist, at the version pinned in
# tools/openapi/package.json (and its lockfile), into web/docs/swagger-ui/: embedded in the binary
# and served at /docs. With --check it changes nothing and exits 1 if the committed copies differ
# from the pinned package (scripts/lint-spec.sh runs that).
#
# To update Swagger UI: set the new version in tools/openapi/package.json, run `npm install` in
# tools/openapi (updates package-lock.json), run this script, run scripts/browser-test.sh (it
# opens /docs) and commit the three together.
set -euo pipefail
cd "$(dirname "$0")/.."

check=0
[ "${1:-}" = --check ] && check=1

pkg=tools/openapi/node_modules/swagger-ui-dist
pinned=$(node -p 'require("./tools/openapi/package.json").devDependencies["swagger-ui-dist"]')
installed=$(node -p "try { require('./$pkg/package.json').version } catch { '' }")
if [ "$installed" != "$pinned" ]; then
  (cd tools/openapi && npm ci --no-audit --no-fund --silent)
fi

dst=web/docs/swagger-ui
# Only what /docs loads (BaseLayout needs no standalone preset), and the licences.
files=(swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css favicon-32x32.png favicon-16x16.png LICENSE NOTICE)

if [ "$check" = 1 ]; then
  stale=0
  for f in "${files[@]}"; do
    cmp -s "$pkg/$f" "$dst/$f" || { echo "web/docs/swagger-ui/$f differs from swagger-ui-dist $pinned" >&2; stale=1; }
  done
  [ "$(cat "$dst/VERSION" 2>/dev/null)" = "$pinned" ] || { echo "web/docs/swagger-ui/VERSION is not $pinned" >&2; stale=1; }
  [ "$stale" = 0 ] || { echo "run ./scripts/update-swagger-ui.sh and commit web/docs/swagger-ui" >&2; exit 1; }
  echo "web/docs/swagger-ui matches swagger-ui-dist $pinned"
  exit 0
fi

rm -rf "$dst"
mkdir -p "$dst"
for f in "${files[@]}"; do
  cp "$pkg/$f" "$dst/$f"
done
echo "$pinned" >"$dst/VERSION"
echo "copied swagger-ui-dist $pinned into $dst: ${files[*]}"
