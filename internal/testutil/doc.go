// Package testutil gives tests real, isolated backends: a fresh migrated PostgreSQL database
// per test, a private key prefix and queue on the shared Redis, and the whole system started
// in-process through the same fx wiring as the binary.
package testutil
