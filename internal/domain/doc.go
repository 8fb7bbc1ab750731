// Package domain holds Flashsale's entities, value objects and domain errors: tenants, users,
// sales, reservations and orders. It does no I/O and imports no adapter.
package domain
