// Package e2e tests Flashsale end to end: the real binary's wiring, HTTP server, PostgreSQL,
// Redis and worker, driven over HTTP like a client would.
package e2e
