// Package app holds Flashsale's use-cases, one per file: commands that change state and queries
// that read it. They depend on internal/domain and the interfaces in internal/ports only.
package app
