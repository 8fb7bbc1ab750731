package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"net/mail"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/flashsale/flashsale/internal/adapters/http/api"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/openapi"
)

type principalKey struct{}

// authResult is what the access token of a request proved, if anything.
type authResult struct {
	principal domain.Principal
	err       error // set when a token was sent and refused
	present   bool
	viaCookie bool
	refresh   string // the refresh cookie, for /v1/auth/refresh
}

// principalFrom returns the authenticated caller.
func principalFrom(ctx context.Context) (domain.Principal, bool) {
	a, _ := ctx.Value(principalKey{}).(authResult)
	return a.principal, a.present && a.err == nil
}

// cookieFrom returns the refresh cookie read by authenticate.
func cookieFrom(ctx context.Context, name string) string {
	a, _ := ctx.Value(principalKey{}).(authResult)
	if name == RefreshCookie {
		return a.refresh
	}
	return ""
}

// Authenticator turns an access token into the caller; whether its session is still alive is
// checked by the edge gate, in the same round trip as the rate limit.
type Authenticator interface {
	Handle(ctx context.Context, token string) (domain.Principal, error)
}

// authenticate reads the access token, from the Authorization header or else the access cookie,
// into the request context. Whether an operation needs one, and which role, is the spec's
// business: the validator enforces its security requirements through checkSecurity.
func authenticate(auth Authenticator) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var res authResult
			if c, err := r.Cookie(RefreshCookie); err == nil {
				res.refresh = c.Value
			}
			token := ""
			if h := r.Header.Get("Authorization"); h != "" {
				res.present = true
				scheme, t, ok := strings.Cut(h, " ")
				if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(t) == "" {
					res.err = domain.ErrUnauthenticated.WithDetail("Authorization must be: Bearer <access token>")
				}
				token = strings.TrimSpace(t)
			} else if c, err := r.Cookie(AccessCookie); err == nil && c.Value != "" {
				res.present, res.viaCookie, token = true, true, c.Value
			}
			if res.present && res.err == nil {
				res.principal, res.err = auth.Handle(r.Context(), token)
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, res)))
		})
	}
}

// checkSecurity is the validator's AuthenticationFunc: a secured operation needs a valid token,
// and its x-required-role extension names the role allowed.
func checkSecurity(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	a, _ := in.RequestValidationInput.Request.Context().Value(principalKey{}).(authResult)
	switch {
	case !a.present:
		return domain.ErrUnauthenticated.WithDetail("this operation needs an access token")
	case a.err != nil:
		return a.err
	}
	if role, _ := in.RequestValidationInput.Route.Operation.Extensions["x-required-role"].(string); role != "" && string(a.principal.Role) != role {
		return domain.ErrForbidden.WithDetail("this operation needs role " + role)
	}
	return nil
}

var defineFormats sync.Once

// validate checks every request against the spec before any handler runs: parameters, body,
// content type and security. Requests it refuses leave nothing behind. The usual purchase is
// proven valid by placeOrder's compiled check (purchaseCheck), every other request by
// kin-openapi.
func validate(log *slog.Logger) (func(http.Handler) http.Handler, error) {
	return newValidator(log, true)
}

// newValidator is validate, with placeOrder's compiled check or without it (kin-openapi alone).
func newValidator(log *slog.Logger, compiled bool) (func(http.Handler) http.Handler, error) {
	defineFormats.Do(func() {
		// Order and sale ids are UUIDv7, which RFC 4122's pattern does not know.
		openapi3.DefineStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC9562))
		openapi3.DefineStringFormatValidator("email", openapi3.NewCallbackValidator(checkEmail))
		openapi3filter.RegisterBodyDecoder("application/json", decodeOneJSONValue)
	})
	doc, err := openapi3.NewLoader().LoadFromData(openapi.Spec)
	if err != nil {
		return nil, fmt.Errorf("load openapi spec: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi spec invalid: %w", err)
	}
	// With servers set, routes would also have to match the Host header.
	doc.Servers = nil
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi router: %w", err)
	}
	opts := &openapi3filter.Options{AuthenticationFunc: checkSecurity}
	var purchase *purchaseCheck
	if compiled {
		purchase = compilePurchaseCheck(doc)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if purchase.valid(r) { // the hot operation's usual request, proven valid at a fraction of the cost
				w.Header()["Cache-Control"] = noStoreValue[:1:1] // as below: a secured operation
				next.ServeHTTP(w, r)
				return
			}
			ctx := r.Context()
			// HEAD is GET without the body (middleware.GetHead routes it to the GET handler):
			// the spec's GET operation is the one it is checked against.
			asGet := r
			if r.Method == http.MethodHead {
				asGet = r.Clone(ctx)
				asGet.Method = http.MethodGet
			}
			route, params, err := router.FindRoute(asGet)
			switch {
			case errors.Is(err, routers.ErrMethodNotAllowed):
				writeProblem(w, newProblem(ctx, codeMethodNotAllowed, r.Method+" is not allowed here"), nil)
				return
			case err != nil:
				writeProblem(w, newProblem(ctx, codeNotFound, "no such resource"), nil)
				return
			}
			if a, _ := ctx.Value(principalKey{}).(authResult); a.present || secured(doc, route) {
				// The answer is this caller's own (or made with their credentials): no cache may
				// keep it, whatever its status. This is the spec's Cache-Control header of those
				// answers; the handlers leave the generated Headers.CacheControl nil.
				w.Header().Set("Cache-Control", "no-store")
			}
			in := &openapi3filter.RequestValidationInput{Request: asGet, PathParams: params, Route: route, Options: opts}
			if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
				p, h := validationProblem(ctx, log, r, err)
				writeProblem(w, p, h)
				return
			}
			next.ServeHTTP(w, r)
		})
	}, nil
}

var emailShape = regexp.MustCompile(openapi3.FormatOfStringForEmail)

// checkEmail is the spec's email format: a bare address (RFC 5322 addr-spec) that net/mail
// parses to exactly itself. The generated Email type keeps what net/mail makes of a string, and
// fails to marshal some of it again: "Ada <ada@example.com>" would be stored as another string
// than sent, and a quoted local part ("a b"@example.com) stored and then answered 500.
func checkEmail(s string) error {
	a, err := mail.ParseAddress(s)
	if !emailShape.MatchString(s) || err != nil || a.Name != "" || a.Address != s {
		return errors.New("not a bare email address")
	}
	return nil
}

// secured reports whether route's operation needs credentials: a security requirement, none of
// its alternatives empty ({} would make them optional).
func secured(doc *openapi3.T, route *routers.Route) bool {
	reqs := doc.Security
	if route.Operation.Security != nil {
		reqs = *route.Operation.Security
	}
	for _, alternative := range reqs {
		if len(alternative) == 0 {
			return false
		}
	}
	return len(reqs) > 0
}

// decodeOneJSONValue is the validator's JSON body decoder. The default one reads the first JSON
// value and ignores whatever follows, and so does the handlers' binding: {"quantity":1} followed by
// anything at all was accepted. A body is one JSON value (RFC 8259), white space around it only,
// and every string in it is text PostgreSQL can store, as sent (checkJSONText).
func decodeOneJSONValue(body io.Reader, h http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
	if err := checkJSONMediaType(h); err != nil {
		return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindUnsupportedFormat, Cause: err}
	}
	raw, err := io.ReadAll(body)
	if err != nil {
		return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: err}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: err}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Reason: "data after the JSON value"}
	}
	if err := checkJSONText(raw); err != nil {
		return nil, &openapi3filter.ParseError{Kind: openapi3filter.KindInvalidFormat, Cause: err}
	}
	return v, nil
}

// validationProblem explains why the validator refused a request, without echoing the schema.
func validationProblem(ctx context.Context, log *slog.Logger, r *http.Request, err error) (api.Problem, http.Header) {
	var (
		secErr *openapi3filter.SecurityRequirementsError
		reqErr *openapi3filter.RequestError
		tooBig *http.MaxBytesError
		domErr *domain.Error
		unsupp *mediaTypeError
	)
	switch {
	// First: the validator reads the body while it checks security (for an AuthenticationFunc that
	// might need it), so a body over the cap can surface inside a SecurityRequirementsError.
	case errors.As(err, &tooBig):
		return newProblem(ctx, codePayloadTooLarge, fmt.Sprintf("the body may be at most %d bytes", tooBig.Limit)), nil
	case errors.As(err, &secErr):
		for _, e := range secErr.Errors {
			if domain.CodeOf(e) == "" { // the session store failed, not the caller
				return problemOf(ctx, log, e), nil
			}
		}
		for _, e := range secErr.Errors {
			if errors.As(e, &domErr) && domErr.Code == domain.ErrForbidden.Code {
				return newProblem(ctx, domErr.Code, domErr.Detail), nil
			}
		}
		for _, e := range secErr.Errors {
			if errors.As(e, &domErr) {
				return newProblem(ctx, domErr.Code, domErr.Detail), nil
			}
		}
		return newProblem(ctx, domain.ErrUnauthenticated.Code, ""), nil
	case errors.As(err, &unsupp):
		return unsupportedMediaType(ctx, r, unsupp.detail, unsupp.header)
	case errors.As(err, &reqErr):
		if b := reqErr.RequestBody; b != nil && !errors.Is(reqErr.Err, openapi3filter.ErrInvalidRequired) &&
			b.Content.Get(r.Header.Get("Content-Type")) == nil {
			// Not a media type the operation takes (kin-openapi's Content.Get, the validator's
			// own lookup): a JSON dialect such as application/merge-patch+json included.
			return unsupportedMediaType(ctx, r, "the body must be "+strings.Join(slices.Sorted(maps.Keys(b.Content)), " or ")+
				mediaTypeNotTaken(r.Header.Get("Content-Type")), nil)
		}
		return newProblem(ctx, domain.ErrInvalidRequest.Code, describe(reqErr)), nil
	}
	log.WarnContext(ctx, "request validation failed unexpectedly", "err", err)
	return newProblem(ctx, domain.ErrInvalidRequest.Code, ""), nil
}

// mediaTypeError is a body the operation's media type would take but for its coding or charset.
type mediaTypeError struct {
	detail string
	header http.Header // what the 415 names as accepted instead
}

func (e *mediaTypeError) Error() string { return e.detail }

// checkJSONMediaType refuses what a JSON body cannot be decoded from as it is: a content coding
// (gzip, deflate, ...; the API decodes none) and a charset other than UTF-8 (RFC 8259: JSON
// exchanged between systems is UTF-8).
func checkJSONMediaType(h http.Header) error {
	for _, coding := range h.Values("Content-Encoding") {
		for c := range strings.SplitSeq(coding, ",") {
			if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "identity") {
				return &mediaTypeError{detail: "the body must not be content-encoded (Content-Encoding " +
					mediaToken(c) + "): send it as it is", header: http.Header{"Accept-Encoding": {"identity"}}}
			}
		}
	}
	if _, params, err := mime.ParseMediaType(h.Get("Content-Type")); err == nil {
		if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
			return &mediaTypeError{detail: "a JSON body is UTF-8, not " + mediaToken(cs)}
		}
	}
	return nil
}

// unsupportedMediaType is the 415 of r; a PATCH names the patch format it takes (RFC 5789).
func unsupportedMediaType(ctx context.Context, r *http.Request, detail string, header http.Header) (api.Problem, http.Header) {
	if r.Method == http.MethodPatch {
		if header == nil {
			header = http.Header{}
		}
		header.Set("Accept-Patch", "application/json")
	}
	return newProblem(ctx, codeUnsupportedMediaType, detail), header
}

// mediaTypeNotTaken names the media type sent, if it is one, for the detail of a 415.
func mediaTypeNotTaken(contentType string) string {
	if contentType == "" {
		return " (the request has no Content-Type)"
	}
	if mt, _, err := mime.ParseMediaType(contentType); err == nil {
		return ", not " + mediaToken(mt)
	}
	return ""
}

// mediaToken is s if it is a short run of token characters (as media types, codings and charsets
// are), so a detail never echoes anything else the client sent.
func mediaToken(s string) string {
	if len(s) > 64 || strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~/", r))
	}) >= 0 {
		return "(not shown)"
	}
	return strings.ToLower(s)
}

// describe names what is wrong and where, in one line a client developer can act on.
func describe(e *openapi3filter.RequestError) string {
	var where string
	switch {
	case e.Parameter != nil:
		where = e.Parameter.In + " parameter " + e.Parameter.Name
	case e.RequestBody != nil:
		where = "request body"
	}
	reason := e.Reason
	var (
		se *openapi3.SchemaError
		te *textError
	)
	switch {
	case errors.As(e.Err, &te):
		if te.where != "" {
			where += " field " + te.where
		}
		reason = te.reason
	case errors.As(e.Err, &se):
		if p := se.JSONPointer(); len(p) > 0 {
			where += " field " + strings.Join(p, ".")
		}
		reason = se.Reason
		if se.SchemaField == "format" && se.Schema != nil {
			reason = "must be a valid " + se.Schema.Format
		}
	case reason == "" && e.Err != nil:
		reason = e.Err.Error()
	}
	reason = strings.TrimSpace(reason)
	if where == "" {
		return reason
	}
	return where + ": " + reason
}

// MaxHeaderBytes caps a request's headers. The server's own cap (http.Server.MaxHeaderBytes) sits
// above it and answers in plain text; below it this middleware answers with a problem.
const MaxHeaderBytes = 32 << 10

// limitHeaders refuses requests whose headers exceed MaxHeaderBytes.
func limitHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		size := len(r.Method) + len(r.RequestURI) + len(r.Proto) + 4
		for k, vs := range r.Header {
			for _, v := range vs {
				size += len(k) + len(v) + 4
			}
		}
		if size > MaxHeaderBytes {
			writeProblem(w, newProblem(r.Context(), codeHeadersTooLarge, fmt.Sprintf("headers may be at most %d bytes", MaxHeaderBytes)), nil)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// limitBody caps request bodies; the validator reports an overrun as 413.
func limitBody(limit int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > limit {
				writeProblem(w, newProblem(r.Context(), codePayloadTooLarge, fmt.Sprintf("the body may be at most %d bytes", limit)), nil)
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, limit)
			next.ServeHTTP(w, r)
		})
	}
}

// recoverPanics turns a panic into a 500 problem that leaks nothing; the stack goes to the log.
func recoverPanics(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler { //nolint:errorlint // a recover() value, not an error chain: net/http's own idiom
						panic(v)
					}
					log.ErrorContext(r.Context(), "panic", "panic", v, "stack", string(debug.Stack()),
						"request_id", middleware.GetReqID(r.Context()))
					writeProblem(w, newProblem(r.Context(), codeInternal, ""), nil)
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// accessLog logs one line per request.
func accessLog(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			next.ServeHTTP(ww, r)
			recordStatus(r.Context(), ww.Status())
			level := slog.LevelDebug
			if ww.Status() >= 500 {
				level = slog.LevelError
			}
			if !log.Enabled(r.Context(), level) { // the line's attributes cost allocations even when dropped
				return
			}
			log.Log(r.Context(), level, "http request", "method", r.Method, "path", r.URL.Path,
				"status", ww.Status(), "bytes", ww.BytesWritten(), "took", time.Since(start),
				"request_id", middleware.GetReqID(r.Context()))
		})
	}
}
