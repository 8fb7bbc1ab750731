// Package web is the storefront: static files embedded in the binary and served at GET /.
// It uses the API exactly as a frontend team would (REST + the live-events WebSocket).
package web

import "embed"

// Files holds index.html (the storefront), admin.html (the control room) and assets/.
//
//go:embed index.html admin.html assets
var Files embed.FS
