package testutil

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/flashsale/flashsale/openapi"
)

// Response is an answer read whole.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a map.
func (r Response) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response %d is not a JSON object: %v: %s", r.Status, err, r.Body)
	}
	return m
}

// Decode decodes the body into v.
func (r Response) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode response %d: %v: %s", r.Status, err, r.Body)
	}
}

// ProblemType is the last path segment of a problem's type, "" if the body is no problem.
func (r Response) ProblemType() string {
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/problem+json") {
		return ""
	}
	var p struct{ Type string }
	if json.Unmarshal(r.Body, &p) != nil {
		return ""
	}
	return p.Type[strings.LastIndex(p.Type, "/")+1:]
}

// Client calls the API and checks every answer against the OpenAPI spec: status declared,
// headers and body matching their schemas.
type Client struct {
	Base string
	HTTP *http.Client
}

// NewClient talks to base (http://host:port).
func NewClient(base string) *Client {
	return &Client{Base: base, HTTP: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1000, MaxConnsPerHost: 0}}}
}

// Request describes one call.
type Request struct {
	Method, Path string
	Token        string
	Header       map[string]string
	// Body is marshalled to JSON unless it is a string or []byte, sent as is.
	Body any
}

// Do sends the request and validates the answer (fails t on a contract violation).
func (c *Client) Do(t testing.TB, req Request) Response {
	t.Helper()
	var body io.Reader
	switch b := req.Body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(raw)
	}
	hr, err := http.NewRequestWithContext(context.Background(), req.Method, c.Base+req.Path, body)
	if err != nil {
		t.Fatal(err)
	}
	if req.Body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if req.Token != "" {
		hr.Header.Set("Authorization", "Bearer "+req.Token)
	}
	for k, v := range req.Header {
		hr.Header.Set(k, v)
	}
	resp, err := c.HTTP.Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.Path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := Response{Status: resp.StatusCode, Header: resp.Header, Body: raw}
	if err := CheckContract(hr, out); err != nil {
		t.Errorf("%s %s -> %d breaks the contract: %v\nbody: %s", req.Method, req.Path, out.Status, err, raw)
	}
	return out
}

var (
	specOnce   sync.Once
	specRouter routers.Router
	specErr    error
)

// CheckContract validates an answer against the spec. Every 4xx/5xx must be problem+json; an
// answer to a route the spec knows must be declared for it and match its schema.
func CheckContract(req *http.Request, resp Response) error {
	specOnce.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromData(openapi.Spec)
		if err != nil {
			specErr = err
			return
		}
		doc.Servers = nil
		specRouter, specErr = gorillamux.NewRouter(doc)
	})
	if specErr != nil {
		return specErr
	}
	if resp.Status >= 400 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/problem+json") {
		return errString("error answer is not application/problem+json")
	}
	route, params, err := specRouter.FindRoute(req)
	if err != nil {
		return nil //nolint:nilerr // not an operation of the spec (unknown path or method): nothing to compare
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 resp.Status,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(resp.Body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	}
	return openapi3filter.ValidateResponse(context.Background(), in)
}

type errString string

func (e errString) Error() string { return string(e) }
