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

// mountStorefront serves the embedded storefront: index.html at / and its assets.
func mountStorefront(r chi.Router, files fs.FS) {
	static := http.FileServerFS(files)
	serve := func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Security-Policy", storefrontCSP)
		w.Header().Set("Cache-Control", "no-cache")
		static.ServeHTTP(w, req)
	}
	r.Get("/", serve)
	r.Get("/assets/*", serve)
}
