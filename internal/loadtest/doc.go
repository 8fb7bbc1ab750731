// Package loadtest drives a running Flashsale over its real HTTP API the way a flash sale
// does: it creates a sale, logs in thousands of users (each with its own client IP through
// X-Forwarded-For), releases their purchases at once or at a constant arrival rate, waits for
// every order to become durable, and then verifies the outcome against the API and PostgreSQL:
// no oversell, no undersell, one order row per accepted purchase, nobody above the limit.
package loadtest
