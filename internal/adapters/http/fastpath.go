package http

import (
	"bytes"
	"io"
	"net/http"
	"regexp"

	"github.com/getkin/kin-openapi/openapi3"
)

// purchaseCheck is the spec's validation of placeOrder compiled for the request nearly every
// client sends: POST /v1/sales/{uuid}/orders, a valid Idempotency-Key, Content-Type
// application/json and a body of exactly {"quantity": n}, by an authenticated shopper. It only
// ever proves a request valid; whatever it does not recognise (an error, or an unusual but valid
// spelling) goes to the full validator, which alone answers refusals. Its constraints (the key's
// pattern, the quantity's bounds, the role) are read from the spec; TestPurchaseCheckAgreesWithTheSpec
// runs both validators over the fuzz corpus and mutations of it, and pins the operation's shape.
type purchaseCheck struct {
	saleID       *regexp.Regexp
	key          *regexp.Regexp
	minQ, maxQ   int
	role         string
	maxBodyBytes int64
}

const (
	purchasePrefix = "/v1/sales/"
	purchaseSuffix = "/orders"
)

// compilePurchaseCheck reads placeOrder's constraints from doc; nil when its shape is not the one
// the check knows (every purchase is then validated in full).
func compilePurchaseCheck(doc *openapi3.T) *purchaseCheck {
	item := doc.Paths.Find(purchasePrefix + "{saleId}" + purchaseSuffix)
	if item == nil || item.Post == nil || item.Post.OperationID != placeOrderOperation || len(item.Post.Parameters) != 2 {
		return nil
	}
	op := item.Post
	c := &purchaseCheck{saleID: regexp.MustCompile(openapi3.FormatOfStringForUUIDOfRFC9562), maxBodyBytes: 64}
	c.role, _ = op.Extensions["x-required-role"].(string)
	for _, p := range op.Parameters {
		switch v := p.Value; {
		case v.In == openapi3.ParameterInPath && v.Name == "saleId" && v.Schema.Value.Format == "uuid":
		case v.In == openapi3.ParameterInHeader && v.Name == "Idempotency-Key" && v.Required && v.Schema.Value.Pattern != "":
			re, err := regexp.Compile(v.Schema.Value.Pattern)
			if err != nil {
				return nil
			}
			c.key = re
		default:
			return nil
		}
	}
	if op.RequestBody == nil || !op.RequestBody.Value.Required || len(op.RequestBody.Value.Content) != 1 {
		return nil
	}
	media := op.RequestBody.Value.Content.Get("application/json")
	if media == nil || media.Schema == nil {
		return nil
	}
	body := media.Schema.Value
	q := body.Properties["quantity"]
	if len(body.Properties) != 1 || q == nil || q.Value.Min == nil || q.Value.Max == nil || !q.Value.Type.Is("integer") {
		return nil
	}
	c.minQ, c.maxQ = int(*q.Value.Min), int(*q.Value.Max)
	if c.key == nil || c.role == "" {
		return nil
	}
	return c
}

// valid reports whether r is proven a valid purchase; then r.Body holds the bytes it read (the
// handler decodes them). False proves nothing: r is as it was, body included.
func (c *purchaseCheck) valid(r *http.Request) bool {
	if c == nil || r.Method != http.MethodPost || r.URL.RawPath != "" || r.URL.RawQuery != "" || r.URL.ForceQuery ||
		r.ContentLength < 2 || r.ContentLength > c.maxBodyBytes {
		return false
	}
	p := r.URL.Path
	if len(p) != len(purchasePrefix)+36+len(purchaseSuffix) || p[:len(purchasePrefix)] != purchasePrefix ||
		p[len(p)-len(purchaseSuffix):] != purchaseSuffix || !c.saleID.MatchString(p[len(purchasePrefix):len(p)-len(purchaseSuffix)]) {
		return false
	}
	a, _ := r.Context().Value(principalKey{}).(authResult)
	if !a.present || a.err != nil || string(a.principal.Role) != c.role {
		return false
	}
	h := r.Header
	if keys := h.Values("Idempotency-Key"); len(keys) != 1 || !c.key.MatchString(keys[0]) {
		return false
	}
	if ct := h.Values("Content-Type"); len(ct) != 1 || ct[0] != "application/json" || len(h.Values("Content-Encoding")) != 0 {
		return false
	}
	raw := make([]byte, r.ContentLength)
	n, err := io.ReadFull(r.Body, raw)
	if q, ok := quantityOnly(raw); err != nil || !ok || q < c.minQ || q > c.maxQ {
		// Not proven: the body reads as it came, whatever is left of it and its error included.
		r.Body = readCloser{io.MultiReader(bytes.NewReader(raw[:n]), r.Body), r.Body}
		return false
	}
	r.Body = readCloser{bytes.NewReader(raw), r.Body}
	return true
}

type readCloser struct {
	io.Reader
	io.Closer
}

// quantityOnly parses exactly {"quantity": n}, JSON white space allowed around every token, n
// a plain non-negative integer in JSON's spelling (no sign, fraction, exponent or leading zero).
func quantityOnly(b []byte) (int, bool) {
	i := 0
	ws := func() {
		for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
			i++
		}
	}
	lit := func(s string) bool {
		ws()
		if len(b)-i < len(s) || string(b[i:i+len(s)]) != s {
			return false
		}
		i += len(s)
		return true
	}
	if !lit("{") || !lit(`"quantity"`) || !lit(":") {
		return 0, false
	}
	ws()
	start := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	digits := b[start:i]
	if len(digits) == 0 || len(digits) > 9 || (digits[0] == '0' && len(digits) > 1) {
		return 0, false
	}
	n := 0
	for _, d := range digits {
		n = n*10 + int(d-'0')
	}
	if !lit("}") {
		return 0, false
	}
	ws()
	return n, i == len(b)
}
