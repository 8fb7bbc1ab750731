package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/testutil"
	"github.com/flashsale/flashsale/openapi"
)

// fuzzPerOperation is how many generated requests each operation gets.
const fuzzPerOperation = 100

// TestEveryOperationFuzzedFromTheSpec is a property test of the whole API, in the manner of
// Schemathesis: every operation of the spec gets requests generated from its schemas (mostly
// valid, some mutated: wrong types, missing or unknown members, hostile strings, non-JSON), with
// no token, a shopper's, an admin's or a forged one, and path ids that exist, do not, or are not
// ids at all. No answer may be a 5xx, and every answer must be one the spec declares for the
// operation, with the body it declares (Client.Do checks each). FUZZ_SEED replays a run.
func TestEveryOperationFuzzedFromTheSpec(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("FUZZ_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("FUZZ_SEED=%d", seed)
	doc, err := openapi3.NewLoader().LoadFromData(openapi.Spec)
	if err != nil {
		t.Fatal(err)
	}
	sys := testutil.StartSystem(t, testutil.SystemOptions{})
	c := testutil.NewClient(sys.URL)
	sale := sys.CreateSale(t, 1000, 5, -time.Minute, time.Hour)
	shoppers := sys.CreateUsers(t, 1, domain.RoleShopper)
	admin, _ := sys.Admin(t)
	order := c.Do(t, testutil.Request{Method: "POST", Path: "/v1/sales/" + sale.Sale.ID.String() + "/orders",
		Token: sys.TokenFor(t, shoppers[0]), Header: map[string]string{"Idempotency-Key": "fuzz-seed-order"},
		Body: map[string]any{"quantity": 1}})
	if order.Status != http.StatusAccepted {
		t.Fatalf("seed order: %d %s", order.Status, order.Body)
	}
	g := &generator{r: rand.New(rand.NewPCG(seed, seed>>1)), ids: []string{sale.Sale.ID.String(), order.JSON(t)["id"].(string)}}

	answered := map[int]int{}
	for _, path := range doc.Paths.InMatchingOrder() {
		item := doc.Paths.Value(path)
		methods := make([]string, 0, len(item.Operations()))
		for m := range item.Operations() {
			methods = append(methods, m)
		}
		slices.Sort(methods)
		for _, method := range methods {
			op := item.GetOperation(method)
			for range fuzzPerOperation {
				req := g.request(method, path, op)
				switch n := g.r.IntN(10); { // fresh sessions: a fuzzed logout ends only its own
				case n == 0:
				case n == 1:
					req.Token = "eyJhbGciOiJub25lIn0.e30." + strconv.FormatUint(g.r.Uint64(), 36)
				case n < 8 && strings.HasPrefix(path, "/v1/admin"), n < 4:
					req.Token = sys.TokenFor(t, admin)
				default:
					req.Token = sys.TokenFor(t, shoppers[0])
				}
				r := c.Do(t, req) // fails the test on an answer the spec does not declare
				answered[r.Status]++
				if os.Getenv("FUZZ_VERBOSE") != "" {
					t.Logf("%s %d %.200s", op.OperationID, r.Status, r.Body)
				}
				if r.Status >= 500 {
					t.Errorf("%s %s (%s) answered %d: %s", req.Method, req.Path, op.OperationID, r.Status, r.Body)
				}
			}
		}
	}
	t.Logf("answers by status: %v", answered)
}

// generator makes requests from the spec's schemas.
type generator struct {
	r   *rand.Rand
	ids []string // ids that exist: a sale, an order
	// valid: this request follows its schemas (only free text is hostile); otherwise anything
	// may be wrong with it.
	valid bool
	// clock makes the date-times of a request increase, as a window's start and end do.
	clock time.Time
}

func (g *generator) chance(n int) bool { return g.r.IntN(n) == 0 }

// wrong is true, once in n, for a request that need not be valid.
func (g *generator) wrong(n int) bool { return !g.valid && g.chance(n) }

func (g *generator) request(method, path string, op *openapi3.Operation) testutil.Request {
	req := testutil.Request{Method: strings.ToUpper(method), Header: map[string]string{}}
	g.valid, g.clock = g.r.IntN(5) < 3, time.Now().Add(-time.Minute)
	query := url.Values{}
	for _, pr := range op.Parameters {
		p := pr.Value
		if !p.Required && g.chance(2) {
			continue
		}
		if p.Required && p.In != openapi3.ParameterInPath && g.wrong(5) {
			continue // a required parameter missing
		}
		v := g.scalar(p.Schema)
		switch p.In {
		case openapi3.ParameterInPath:
			path = strings.ReplaceAll(path, "{"+p.Name+"}", url.PathEscape(v))
		case openapi3.ParameterInQuery:
			query.Add(p.Name, v)
		case openapi3.ParameterInHeader:
			req.Header[p.Name] = strings.Map(func(r rune) rune { // what a header can carry
				if r < 0x20 || r > 0x7e {
					return 'x'
				}
				return r
			}, v)
		}
	}
	req.Path = path
	if len(query) > 0 {
		req.Path += "?" + query.Encode()
	}
	if rb := op.RequestBody; rb != nil && rb.Value != nil {
		if mt := rb.Value.Content.Get("application/json"); mt != nil && (rb.Value.Required || !g.chance(3)) {
			req.Body = g.body(mt.Schema)
		}
	}
	return req
}

// body is a JSON body for s: mostly valid, sometimes mutated, sometimes not JSON at all.
func (g *generator) body(s *openapi3.SchemaRef) any {
	v := g.value(s, 0)
	mutation := g.r.IntN(8)
	if g.valid {
		mutation = -1
	}
	switch mutation {
	case 0:
		return "{not json" + g.text(4)
	case 1:
		return []any{v}
	case 2:
		if m, ok := v.(map[string]any); ok && len(m) > 0 {
			for k := range m { // a member of the wrong type
				m[k] = []any{map[string]any{"x": g.text(3)}}
				break
			}
		}
	case 3:
		if m, ok := v.(map[string]any); ok {
			m["unexpected"+g.text(2)] = g.text(5)
		}
	case 4:
		if m, ok := v.(map[string]any); ok {
			for k := range m { // a member missing
				delete(m, k)
				break
			}
		}
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return "null"
	}
	return raw
}

func (g *generator) value(ref *openapi3.SchemaRef, depth int) any {
	if ref == nil || ref.Value == nil || depth > 6 {
		return nil
	}
	s := ref.Value
	switch {
	case len(s.OneOf) > 0:
		return g.value(s.OneOf[g.r.IntN(len(s.OneOf))], depth+1)
	case len(s.AnyOf) > 0:
		return g.value(s.AnyOf[g.r.IntN(len(s.AnyOf))], depth+1)
	case len(s.AllOf) > 0:
		out := map[string]any{}
		for _, part := range s.AllOf {
			if m, ok := g.value(part, depth+1).(map[string]any); ok {
				for k, v := range m {
					out[k] = v
				}
			}
		}
		return out
	case s.Type.Is(openapi3.TypeObject) || len(s.Properties) > 0:
		out := map[string]any{}
		names := make([]string, 0, len(s.Properties))
		for name := range s.Properties {
			names = append(names, name)
		}
		slices.SortFunc(names, func(a, b string) int { // a window's start before its end
			if sa, sb := strings.Contains(a, "start"), strings.Contains(b, "start"); sa != sb {
				if sa {
					return -1
				}
				return 1
			}
			return strings.Compare(a, b)
		})
		for _, name := range names {
			if slices.Contains(s.Required, name) || !g.chance(3) || (g.valid && !g.chance(10)) {
				out[name] = g.value(s.Properties[name], depth+1)
			}
		}
		return out
	case s.Type.Is(openapi3.TypeArray):
		n := g.r.IntN(3)
		out := make([]any, n)
		for i := range out {
			out[i] = g.value(s.Items, depth+1)
		}
		return out
	case s.Type.Is(openapi3.TypeInteger):
		return g.integer(s)
	case s.Type.Is(openapi3.TypeNumber):
		return float64(g.integer(s)) + g.r.Float64()
	case s.Type.Is(openapi3.TypeBoolean):
		return g.chance(2)
	default:
		return g.scalar(ref)
	}
}

func (g *generator) integer(s *openapi3.Schema) int64 {
	lo, hi := int64(-5), int64(1_000_000)
	if s.Min != nil {
		lo = int64(*s.Min)
	}
	if s.Max != nil {
		hi = int64(*s.Max)
	}
	if g.wrong(3) {
		return []int64{lo - 1, hi + 1, 1 << 53}[g.r.IntN(3)]
	}
	if hi-lo > 1000 && !g.chance(4) {
		hi = lo + 1000
	}
	if hi <= lo {
		return lo
	}
	return lo + g.r.Int64N(hi-lo+1)
}

// scalar is a parameter's or a string member's value, as text.
func (g *generator) scalar(ref *openapi3.SchemaRef) string {
	if ref == nil || ref.Value == nil {
		return g.text(6)
	}
	s := ref.Value
	if len(s.Enum) > 0 && !g.wrong(3) {
		return fmt.Sprint(s.Enum[g.r.IntN(len(s.Enum))])
	}
	if s.Type.Is(openapi3.TypeInteger) || s.Type.Is(openapi3.TypeNumber) {
		return strconv.FormatInt(g.integer(s), 10)
	}
	if s.Type.Is(openapi3.TypeBoolean) {
		return strconv.FormatBool(g.chance(2))
	}
	switch s.Format {
	case "uuid":
		switch {
		case g.wrong(3):
			return g.text(10)
		case g.chance(4):
			return uuid.NewString()
		default:
			return g.ids[g.r.IntN(len(g.ids))]
		}
	case "date-time":
		if g.wrong(3) {
			return g.text(8)
		}
		g.clock = g.clock.Add(time.Duration(1+g.r.IntN(3600)) * time.Second)
		return g.clock.UTC().Format(time.RFC3339)
	case "email":
		if g.wrong(3) {
			return g.text(8)
		}
		return "fuzz-" + strconv.Itoa(g.r.IntN(1_000_000)) + "@test.local"
	}
	if s.Pattern != "" && !g.wrong(3) {
		if v, ok := g.matching(s); ok {
			return v
		}
	}
	n := 1 + g.r.IntN(16)
	if s.MinLength > uint64(n) {
		n = int(s.MinLength)
	}
	if s.MaxLength != nil && g.wrong(4) {
		n = int(*s.MaxLength) + 1
	}
	return g.text(n)
}

// matching is a value that matches s's pattern: its example, or the first of a few shapes that
// does.
func (g *generator) matching(s *openapi3.Schema) (string, bool) {
	re, err := regexp.Compile(s.Pattern)
	if err != nil {
		return "", false
	}
	const lower, upper, digits = "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789"
	pick := func(alphabet string, n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[g.r.IntN(len(alphabet))]
		}
		return string(b)
	}
	candidates := []string{pick(upper, 3), pick(lower+digits, 12), pick(lower+upper+digits+"_-", 8+g.r.IntN(24))}
	if s.Example != nil {
		candidates = append([]string{fmt.Sprint(s.Example)}, candidates...)
	}
	for _, c := range candidates {
		if re.MatchString(c) {
			return c, true
		}
	}
	return "", false
}

// hostileRunes make up generated text: plain letters, and what breaks careless code.
var hostileRunes = []rune("abcXYZ019 _-.@é€😀<>\"'&;%/\\\u200b\u202e\x00\x01\x7f")

func (g *generator) text(n int) string {
	var b strings.Builder
	for range n {
		if g.chance(4) {
			b.WriteRune(hostileRunes[g.r.IntN(len(hostileRunes))])
		} else {
			b.WriteByte(byte('a' + g.r.IntN(26)))
		}
	}
	return b.String()
}
