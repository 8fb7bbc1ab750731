package http

import (
	"io/fs"
	"net/http"

	"github.com/go-chi/chi/v5"
)

// storefrontCSP lets the storefront load its own scripts and styles and talk to its own origin
// (REST and WebSocket), and nothing else.
const storefrontCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// mountStorefront serves the embedded storefront: index.html at /, the control room
// (admin.html) at /admin, and their assets. The control room's page is public, like any
// script the browser loads; every figure it shows comes from admin operations the API refuses
// to anyone but an admin.
func mountStorefront(r chi.Router, files fs.FS) {
	static := http.FileServerFS(files)
	serve := func(w http.ResponseWriter, req *http.Request) {
		storefrontHeaders(w)
		static.ServeHTTP(w, req)
	}
	r.Get("/", serve)
	r.Get("/assets/*", serve)
	r.Get("/admin", func(w http.ResponseWriter, req *http.Request) {
		storefrontHeaders(w)
		http.ServeFileFS(w, req, files, "admin.html")
	})
}

func storefrontHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Security-Policy", storefrontCSP)
	w.Header().Set("Cache-Control", "no-cache")
}
