// Package openapi holds the HTTP contract of Flashsale: the OpenAPI document that the server is
// generated from, validated against and serves at GET /openapi.yaml.
package openapi

import _ "embed"

// Spec is openapi/flashsale.yaml, byte for byte.
//
//go:embed flashsale.yaml
var Spec []byte
