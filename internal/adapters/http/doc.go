// Package http is Flashsale's REST adapter: the strict server generated from
// openapi/flashsale.yaml (package api), kin-openapi request validation in front of it, and the
// one table that turns domain errors into RFC 9457 problem+json answers.
package http
