package http

import (
	"io/fs"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
)

// docsCSP lets Swagger UI load its own scripts, styles and images (its icons are data: URIs) and
// call its own origin (the spec and "Try it out"), and nothing else: no inline script, no eval,
// no inline style sheet (React sets styles through the CSSOM, which style-src does not govern).
const docsCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// mountDocs serves Swagger UI: index.html at /docs (and /docs/), its files below /docs/.
// Directories are not listed.
func mountDocs(r chi.Router, files fs.FS) {
	static := http.StripPrefix("/docs", http.FileServerFS(files))
	index := func(w http.ResponseWriter, req *http.Request) {
		docsHeaders(w)
		http.ServeFileFS(w, req, files, "index.html")
	}
	r.Get("/docs", index)
	r.Get("/docs/", index)
	r.Get("/docs/*", func(w http.ResponseWriter, req *http.Request) {
		name := strings.TrimPrefix(req.URL.Path, "/docs/")
		if info, err := fs.Stat(files, name); err != nil || info.IsDir() {
			writeProblem(w, newProblem(req.Context(), codeNotFound, "no such resource"), nil)
			return
		}
		docsHeaders(w)
		static.ServeHTTP(w, req)
	})
}

func docsHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Security-Policy", docsCSP)
	w.Header().Set("Cache-Control", "no-cache")
}
