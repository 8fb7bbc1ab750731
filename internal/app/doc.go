// Package app holds Flashsale's use-cases: commands that change state and queries that read
// them, each a Handler with a Handle method. Related use-cases share a file (sales.go: create,
// update, get and list sales; orders.go: get and list orders, dead letters; events.go: the
// consumers' use-cases; relay.go: the outbox relay; auth.go and sessions.go: accounts and
// sessions; live.go: scheduled sale events and tickets); the purchase path has files of its
// own (place_order.go, write_order.go, reconcile.go). They depend on
// internal/domain and the interfaces in internal/ports only (enforced by depguard).
package app
