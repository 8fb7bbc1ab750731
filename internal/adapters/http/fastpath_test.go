package http

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/openapi"
)

// purchaseCase is one request to placeOrder's path, as both validators see it.
type purchaseCase struct {
	method, path, contentType, encoding, key string
	body                                     []byte
	who                                      byte // 0 shopper, 1 admin, 2 no token, 3 refused token
}

func (c purchaseCase) request() *http.Request {
	r := httptest.NewRequest(c.method, "/", bytes.NewReader(c.body))
	r.URL.Path, r.URL.RawPath, r.RequestURI = c.path, "", c.path
	if i := strings.IndexByte(c.path, '?'); i >= 0 {
		r.URL.Path, r.URL.RawQuery = c.path[:i], c.path[i+1:]
	}
	for name, v := range map[string]string{"Content-Type": c.contentType, "Content-Encoding": c.encoding, "Idempotency-Key": c.key} {
		for _, one := range strings.Split(v, "\x00") { // \x00 separates repeated fields
			if one != "" {
				r.Header.Add(name, one)
			}
		}
	}
	a := authResult{}
	switch c.who % 4 {
	case 0:
		a = authResult{present: true, principal: domain.Principal{UserID: uuid.New(), Role: domain.RoleShopper}}
	case 1:
		a = authResult{present: true, principal: domain.Principal{UserID: uuid.New(), Role: domain.RoleAdmin}}
	case 3:
		a = authResult{present: true, err: domain.ErrUnauthenticated.WithDetail("invalid or expired access token")}
	}
	return r.WithContext(context.WithValue(r.Context(), principalKey{}, a))
}

// checkAgreement runs c through the compiled check and through kin-openapi alone: the check may
// prove valid only what kin-openapi lets through, the handler then reads the same body, and a
// request it does not prove keeps its body intact for the full validator.
func checkAgreement(t *testing.T, check *purchaseCheck, full http.Handler, seen *[]byte, c purchaseCase) (fast, kin bool) {
	t.Helper()
	r := c.request()
	fast = check.valid(r)
	got, _ := io.ReadAll(r.Body)
	if !bytes.Equal(got, c.body) {
		t.Fatalf("%+v: the body reads %q after the check, want %q", c, got, c.body)
	}
	*seen = nil
	w := httptest.NewRecorder()
	full.ServeHTTP(w, c.request())
	kin = *seen != nil
	if fast && !kin {
		t.Fatalf("%+v: the compiled check proves valid what the spec refuses (%d %s)", c, w.Code, w.Body)
	}
	if fast && !bytes.Equal(*seen, c.body) {
		t.Fatalf("%+v: the handler would read %q, want %q", c, *seen, c.body)
	}
	return fast, kin
}

func purchaseValidators(t testing.TB) (*purchaseCheck, http.Handler, *[]byte) {
	doc, err := openapi3.NewLoader().LoadFromData(openapi.Spec)
	if err != nil {
		t.Fatal(err)
	}
	check := compilePurchaseCheck(doc)
	if check == nil {
		t.Fatal("placeOrder's compiled check does not recognise the spec's operation: every purchase would take the slow path")
	}
	kinOnly, err := newValidator(slog.New(slog.DiscardHandler), false)
	if err != nil {
		t.Fatal(err)
	}
	seen := new([]byte)
	full := kinOnly(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if b == nil {
			b = []byte{}
		}
		*seen = b
		w.WriteHeader(http.StatusAccepted)
	}))
	return check, full, seen
}

// TestPurchaseCheckAgreesWithTheSpec: over the request-decoding fuzz corpus and mutations of a
// purchase in every part the spec constrains, the compiled check proves valid only requests
// kin-openapi accepts, and proves the usual spellings of a purchase valid.
func TestPurchaseCheckAgreesWithTheSpec(t *testing.T) {
	check, full, seen := purchaseValidators(t)
	sale := "/v1/sales/01932c4e-8f7a-7cc1-9a4b-2f1e3d4c5b6a/orders"
	base := purchaseCase{method: http.MethodPost, path: sale, contentType: "application/json", key: "fuzz-key-0001", body: []byte(`{"quantity":1}`)}
	usual := []purchaseCase{base}
	for _, b := range []string{`{"quantity": 1}`, `{"quantity":1000}`, "\t{ \"quantity\" : 7 }\n", `{"quantity":999}`} {
		c := base
		c.body = []byte(b)
		usual = append(usual, c)
	}
	for _, k := range []string{"5f0c2b8e-6a51-4c5e-9d43-2b8f1f7e0c11", "abcdefgh", strings.Repeat("k", 128), "a.b:c_d-e"} {
		c := base
		c.key = k
		usual = append(usual, c)
	}
	for _, c := range usual {
		if fast, kin := checkAgreement(t, check, full, seen, c); !fast || !kin {
			t.Errorf("%+v: proven %v, spec %v; want both", c, fast, kin)
		}
	}

	var cases []purchaseCase
	for _, s := range purchaseCorpus {
		c := base
		c.contentType, c.key, c.body = s.contentType, s.key, []byte(s.body)
		cases = append(cases, c)
	}
	mutate := []func(*purchaseCase){
		func(c *purchaseCase) { c.method = http.MethodPut },
		func(c *purchaseCase) { c.path = strings.ToUpper(sale[:10]) + sale[10:] },
		func(c *purchaseCase) { c.path = "/v1/sales/01932C4E-8F7A-7CC1-9A4B-2F1E3D4C5B6A/orders" },
		func(c *purchaseCase) { c.path = "/v1/sales/00000000-0000-0000-0000-000000000000/orders" },
		func(c *purchaseCase) { c.path = "/v1/sales/01932c4e-8f7a-9cc1-9a4b-2f1e3d4c5b6a/orders" },
		func(c *purchaseCase) { c.path = "/v1/sales/01932c4e-8f7a-7cc1-7a4b-2f1e3d4c5b6a/orders" },
		func(c *purchaseCase) { c.path = "/v1/sales/01932c4e8f7a7cc19a4b2f1e3d4c5b6a/orders" },
		func(c *purchaseCase) { c.path = "/v1/sales/{01932c4e-8f7a-7cc1-9a4b-2f1e3d4c5b6}/orders" },
		func(c *purchaseCase) { c.path = sale + "/" },
		func(c *purchaseCase) { c.path = sale + "?x=1" },
		func(c *purchaseCase) { c.path = "/v1/sales//01932c4e-8f7a-7cc1-9a4b-2f1e3d4c5b6a/orders" },
		func(c *purchaseCase) { c.who = 1 },
		func(c *purchaseCase) { c.who = 2 },
		func(c *purchaseCase) { c.who = 3 },
		func(c *purchaseCase) { c.key = "" },
		func(c *purchaseCase) { c.key = "fuzz-key-0001\x00fuzz-key-0002" },
		func(c *purchaseCase) { c.key = "short" },
		func(c *purchaseCase) { c.key = strings.Repeat("k", 129) },
		func(c *purchaseCase) { c.contentType = "application/json\x00application/json" },
		func(c *purchaseCase) { c.contentType = "application/json;charset=utf-8" },
		func(c *purchaseCase) { c.contentType = "Application/JSON" },
		func(c *purchaseCase) { c.encoding = "identity" },
		func(c *purchaseCase) { c.encoding = "gzip" },
		func(c *purchaseCase) { c.body = []byte(`{"quantity":0}`) },
		func(c *purchaseCase) { c.body = []byte(`{"quantity":1001}`) },
		func(c *purchaseCase) { c.body = []byte(`{"quantity":01}`) },
		func(c *purchaseCase) { c.body = []byte(`{"quantity":-0}`) },
		func(c *purchaseCase) { c.body = []byte(`{"quantity":1234567890}`) },
		func(c *purchaseCase) { c.body = []byte(`{"\u0071uantity":1}`) },
		func(c *purchaseCase) { c.body = []byte(`{"quantity":1,}`) },
		func(c *purchaseCase) { c.body = []byte(`{"quantity":1}` + "\x00") },
		func(c *purchaseCase) { c.body = []byte("{\"quantity\":1}\v") },
		func(c *purchaseCase) { c.body = []byte(`{"quantity":1}` + strings.Repeat(" ", 60)) },
	}
	for _, m := range mutate {
		c := base
		m(&c)
		cases = append(cases, c)
		for _, n := range mutate[len(mutate)-10:] { // pairs with the body's mutations
			d := c
			n(&d)
			cases = append(cases, d)
		}
	}
	proven, accepted := 0, 0
	for _, c := range cases {
		fast, kin := checkAgreement(t, check, full, seen, c)
		if fast {
			proven++
		}
		if kin {
			accepted++
		}
	}
	t.Logf("%d requests: %d accepted by the spec, %d of them proven by the compiled check", len(cases), accepted, proven)
}

// FuzzPurchaseCheck: whatever the body, key, content type, sale id and caller, the compiled
// check proves valid only what kin-openapi accepts (TestPurchaseCheckAgreesWithTheSpec's corpus
// as seeds).
func FuzzPurchaseCheck(f *testing.F) {
	check, full, seen := purchaseValidators(f)
	for _, s := range purchaseCorpus {
		f.Add("01932c4e-8f7a-7cc1-9a4b-2f1e3d4c5b6a", s.contentType, s.key, []byte(s.body), byte(0))
	}
	f.Fuzz(func(t *testing.T, saleID, contentType, key string, body []byte, who byte) {
		if !fieldValue(contentType) || !fieldValue(key) || strings.ContainsAny(saleID, "/?#%") || !json.Valid([]byte(`"`+saleID+`"`)) {
			t.Skip()
		}
		c := purchaseCase{method: http.MethodPost, path: "/v1/sales/" + saleID + "/orders",
			contentType: strings.Trim(contentType, " \t"), key: strings.Trim(key, " \t"), body: body, who: who}
		checkAgreement(t, check, full, seen, c)
	})
}

// fieldValue reports whether s can be an HTTP/1.1 field value (no control characters).
func fieldValue(s string) bool {
	for _, r := range s {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return false
		}
	}
	return true
}

// purchaseCorpus is FuzzRequestDecoding's corpus of purchases.
var purchaseCorpus = []struct{ contentType, key, body string }{
	{"application/json", "fuzz-key-0001", `{"quantity": 1}`},
	{"application/json", "fuzz-key-0001", `{"quantity":1000}`},
	{"application/json; charset=utf-8", "5f0c2b8e-6a51-4c5e-9d43-2b8f1f7e0c11", "\t{ \"quantity\" : 7 }\n"},
	{"application/json", "fuzz-key-0002", `{"quantity": 1001}`},
	{"application/json", "fuzz-key-0003", `{"quantity": 0}`},
	{"application/json", "fuzz-key-0004", `{"quantity": -1}`},
	{"application/json", "fuzz-key-0005", `{"quantity": 1.5}`},
	{"application/json", "fuzz-key-0006", `{"quantity": 1.0}`},
	{"application/json", "fuzz-key-0007", `{"quantity": 1e2}`},
	{"application/json", "fuzz-key-0008", `{"quantity": 1e400}`},
	{"application/json", "fuzz-key-0009", `{"quantity": "1"}`},
	{"application/json", "fuzz-key-0010", `{"quantity": null}`},
	{"application/json", "fuzz-key-0011", `{"quantity": 1, "priceCents": 0}`},
	{"application/json", "fuzz-key-0012", `{"Quantity": 1}`},
	{"application/json", "fuzz-key-0013", `{"quantity": 1, "quantity": 2}`},
	{"application/json", "fuzz-key-0014", `{"quantity": 1}{"quantity": 2}`},
	{"application/json", "fuzz-key-0015", `{"quantity": 1} trailing`},
	{"application/json", "fuzz-key-0016", `[{"quantity": 1}]`},
	{"application/json", "fuzz-key-0017", `null`},
	{"application/json", "fuzz-key-0018", ``},
	{"application/json", "fuzz-key-0019", `{"quantity": 1`},
	{"application/json", "fuzz-key-0020", "\xef\xbb\xbf{\"quantity\": 1}"},
	{"application/json", "fuzz-key-0021", `{"quantity": 1, "pad": "` + strings.Repeat("x", 200) + `"}`},
	{"text/plain", "fuzz-key-0022", `{"quantity": 1}`},
	{"", "fuzz-key-0023", `{"quantity": 1}`},
	{"application/x-www-form-urlencoded", "fuzz-key-0024", `quantity=1`},
	{"application/problem+json", "fuzz-key-0025", `{"quantity": 1}`},
	{"APPLICATION/JSON", "fuzz-key-0026", `{"quantity": 1}`},
	{"application/json; charset=utf-16", "fuzz-key-0027", `{"quantity": 1}`},
	{"multipart/form-data; boundary=x", "fuzz-key-0028", "--x\r\n\r\n1\r\n--x--"},
	{"application/json", "", `{"quantity": 1}`},
	{"application/json", "short", `{"quantity": 1}`},
	{"application/json", "abc%0D%0ASet-Cookie:x", `{"quantity": 1}`},
	{"application/json", "abcdefgh;ijkl", `{"quantity": 1}`},
	{"application/json", `abcdefgh"ijkl`, `{"quantity": 1}`},
	{"application/json", strings.Repeat("k", 129), `{"quantity": 1}`},
	{"application/json", "ключ-ключ-ключ", `{"quantity": 1}`},
}
