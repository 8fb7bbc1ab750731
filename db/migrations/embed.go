// Package migrations embeds the SQL migrations, applied with goose by `flashsale migrate`.
package migrations

import "embed"

// FS holds the *.sql migrations.
//
//go:embed *.sql
var FS embed.FS
