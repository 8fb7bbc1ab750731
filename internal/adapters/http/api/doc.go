// Package api is generated from openapi/flashsale.yaml by oapi-codegen: the models, the chi
// router and the strict server interface that internal/adapters/http implements.
package api

//go:generate go tool -modfile=../../../../tools/go.mod oapi-codegen -config oapi-codegen.yaml ../../../../openapi/flashsale.yaml
