// Package postgres implements the repositories of internal/ports on PostgreSQL with pgx and
// sqlc, and applies the embedded migrations with goose.
package postgres

//go:generate go tool -modfile=../../../tools/go.mod sqlc generate -f ../../../sqlc.yaml
