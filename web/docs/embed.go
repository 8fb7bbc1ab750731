// Package docs is the API's interactive documentation: Swagger UI, served at GET /docs from files
// embedded in the binary, on the spec served at GET /openapi.yaml.
//
// swagger-ui/ is copied from the npm package swagger-ui-dist by scripts/update-swagger-ui.sh (the
// version is pinned in tools/openapi/package.json); index.html, init.js and docs.css are ours.
package docs

import "embed"

// Files holds index.html, init.js, docs.css and swagger-ui/.
//
//go:embed index.html init.js docs.css swagger-ui
var Files embed.FS
