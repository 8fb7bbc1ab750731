package http

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/rs/cors"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

// GateDecision is what the edge gate found for one request.
type GateDecision struct {
	// Allowed is false when the client is over its rate limit (always true when no limit applies).
	Allowed    bool
	Remaining  int
	RetryAfter time.Duration
	ResetAfter time.Duration
	// SessionActive reports whether the caller's session is alive (true when none was asked).
	SessionActive bool
}

// EdgeGate answers, in one round trip, what every protected request asks: is this client within
// its rate limit (rateKey, perMinute; skipped when perMinute is 0) and is its session alive
// (skipped for uuid.Nil).
type EdgeGate interface {
	Check(ctx context.Context, rateKey string, perMinute int, sessionID uuid.UUID) (GateDecision, error)
}

// EdgeConfig is the protection at the HTTP edge.
type EdgeConfig struct {
	// AllowedOrigins may call the API from a browser, with credentials (CORS), and send
	// state-changing requests (CSRF). Never "*".
	AllowedOrigins []string
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// PurchasesPerMinute and AuthPerMinute limit each client IP; 0 disables the limit.
	PurchasesPerMinute int
	AuthPerMinute      int
	// HSTS sends Strict-Transport-Security (production, behind TLS).
	HSTS bool
	// SoldOut, if set, names the sales this node knows sold out: their purchases are not
	// counted against the rate limit (they are answered from memory, for less than the limit
	// costs).
	SoldOut SoldOutSales
	// GateInPurchase leaves a purchase's session and rate-limit checks to the purchase itself
	// (ports.PurchaseStore.GateInPurchase: in the reservation's own round trip).
	GateInPurchase bool
}

// purchaseGateKey holds, in a purchase's context, the checks the edge left to the purchase.
type purchaseGateKey struct{}

// purchaseGate is what the edge left to a purchase: its checks, and the answer's header for the
// rate limit's fields.
type purchaseGate struct {
	gate   ports.PurchaseGate
	header http.Header
}

// setRateLimit writes a rate limit's decision on an answer (RateLimit-* fields, and Retry-After
// when refused).
func setRateLimit(h http.Header, perMinute, remaining int, reset, retryAfter time.Duration, allowed bool) {
	h.Set("RateLimit-Limit", strconv.Itoa(perMinute))
	h.Set("RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("RateLimit-Reset", strconv.Itoa(seconds(reset.Seconds())))
	h.Set("RateLimit-Policy", strconv.Itoa(perMinute)+";w=60")
	if !allowed {
		h.Set("Retry-After", strconv.Itoa(max(seconds(retryAfter.Seconds()), 1)))
	}
}

// SoldOutSales tells the edge which sales this node knows sold out (app.SoldOutSales).
type SoldOutSales interface {
	Has(tenantID, saleID uuid.UUID) bool
}

// purchaseOfSoldOut reports whether r buys from a sale this node knows sold out.
func purchaseOfSoldOut(r *http.Request, sales SoldOutSales, tenantID uuid.UUID) bool {
	if sales == nil {
		return false
	}
	id, ok := strings.CutPrefix(r.URL.Path, "/v1/sales/")
	if !ok {
		return false
	}
	if id, ok = strings.CutSuffix(id, "/orders"); !ok || len(id) != 36 {
		return false
	}
	saleID, err := uuid.Parse(id)
	return err == nil && sales.Has(tenantID, saleID)
}

// clientIP is the address of the client: the peer, unless the peer is a trusted proxy, in
// which case the right-most X-Forwarded-For entry that is not itself a trusted proxy. Entries
// left of it were written by the client and prove nothing.
func clientIP(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if !isTrusted(peer, trusted) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		addr, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return peer // a malformed chain: trust nothing in it
		}
		addr = addr.Unmap()
		if !isTrusted(addr, trusted) {
			return addr
		}
	}
	return peer
}

func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	addr, _ := netip.ParseAddr(host)
	return addr.Unmap()
}

func isTrusted(addr netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// gate asks Redis, in one round trip, what a request needs to know before it runs: whether
// the client is within its rate limit (purchases and auth calls, per client IP, counts shared
// by every API node) and whether the caller's session is still alive (a revoked session's
// tokens stop working at once). If Redis cannot answer, rate limits let requests through (they
// protect the system and must not take it down), but an unverifiable session does not.
func gate(g EdgeGate, cfg EdgeConfig, log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := r.Context()
			bucket, perMinute := limitFor(r, cfg)
			a, _ := ctx.Value(principalKey{}).(authResult)
			sessionID := uuid.Nil
			if a.present && a.err == nil {
				sessionID = a.principal.SessionID
			}
			if bucket == "purchase" && sessionID != uuid.Nil && cfg.GateInPurchase {
				pg := purchaseGate{gate: ports.PurchaseGate{SessionID: sessionID}, header: w.Header()}
				if perMinute > 0 {
					pg.gate.RateKey, pg.gate.PerMinute = bucket+":"+clientIP(r, cfg.TrustedProxies).String(), perMinute
				}
				next.ServeHTTP(w, r.WithContext(context.WithValue(ctx, purchaseGateKey{}, pg)))
				return
			}
			if bucket == "purchase" && sessionID != uuid.Nil && purchaseOfSoldOut(r, cfg.SoldOut, a.principal.TenantID) {
				perMinute = 0 // the session is still checked: a revoked one is refused as ever
			}
			if perMinute <= 0 && sessionID == uuid.Nil {
				next.ServeHTTP(w, r)
				return
			}
			key := ""
			if perMinute > 0 {
				key = bucket + ":" + clientIP(r, cfg.TrustedProxies).String()
			}
			d, err := g.Check(ctx, key, max(perMinute, 0), sessionID)
			if err != nil {
				if sessionID != uuid.Nil {
					writeProblem(w, problemOf(ctx, log, fmt.Errorf("verify session: %w", err)), nil)
					return
				}
				log.WarnContext(ctx, "rate limiter unavailable; request let through", "err", err)
				next.ServeHTTP(w, r)
				return
			}
			if perMinute > 0 {
				setRateLimit(w.Header(), perMinute, d.Remaining, d.ResetAfter, d.RetryAfter, d.Allowed)
				if !d.Allowed {
					writeProblem(w, newProblem(ctx, codeRateLimited, fmt.Sprintf("%d requests per minute; retry in %s seconds",
						perMinute, w.Header().Get("Retry-After"))), nil)
					return
				}
			}
			if sessionID != uuid.Nil && !d.SessionActive {
				a.err = domain.ErrUnauthenticated.WithDetail("the session has ended; log in again")
				r = r.WithContext(context.WithValue(ctx, principalKey{}, a))
			}
			next.ServeHTTP(w, r)
		})
	}
}

func seconds(s float64) int { return max(0, int(math.Ceil(s))) }

// limitFor names the bucket of a request: purchases and auth calls are limited, the rest not.
func limitFor(r *http.Request, cfg EdgeConfig) (string, int) {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/v1/auth/"):
		return "auth", cfg.AuthPerMinute
	case r.Method == http.MethodPost && strings.HasPrefix(p, "/v1/sales/") && strings.HasSuffix(p, "/orders"):
		return "purchase", cfg.PurchasesPerMinute
	}
	return "", 0
}

// corsAndCSRF applies the origin allowlist twice: CORS lets allowed origins read answers with
// credentials, and cross-origin protection (net/http's, by Sec-Fetch-Site and Origin) refuses
// state-changing browser requests from any other origin, which is what makes cookie
// authentication safe from CSRF. A preflight from a foreign origin is refused outright.
func corsAndCSRF(cfg EdgeConfig) (func(http.Handler) http.Handler, error) {
	c := cors.New(cors.Options{
		AllowedOrigins:   cfg.AllowedOrigins,
		AllowedMethods:   []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete},
		AllowedHeaders:   []string{"Authorization", "Content-Type", "Idempotency-Key", "X-Tenant"},
		ExposedHeaders:   []string{"Location", "Idempotent-Replayed", "Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"},
		AllowCredentials: true,
		MaxAge:           600,
	})
	allowed := map[string]bool{}
	csrf := http.NewCrossOriginProtection()
	for _, o := range cfg.AllowedOrigins {
		if strings.Contains(o, "*") {
			return nil, fmt.Errorf("CORS origin %q: wildcards are not allowed", o)
		}
		if err := csrf.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("CORS origin %q: %w", o, err)
		}
		allowed[o] = true
	}
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, newProblem(r.Context(), codeCrossOrigin,
			"state-changing requests must come from this site or an allowed origin"), nil)
	}))
	return func(next http.Handler) http.Handler {
		protected := c.Handler(csrf.Handler(next))
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			origin := r.Header.Get("Origin")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" &&
				origin != "" && !allowed[origin] && !sameOrigin(r, origin) {
				writeProblem(w, newProblem(r.Context(), codeOriginNotAllowed, "origin "+origin+" may not call this API"), nil)
				return
			}
			protected.ServeHTTP(w, r)
		})
	}, nil
}

func sameOrigin(r *http.Request, origin string) bool {
	return origin == "http://"+r.Host || origin == "https://"+r.Host
}

// securityHeaders is Helmet's set for a JSON API: nothing may frame, embed or sniff it.
func securityHeaders(hsts bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			setSecurityHeaders(w.Header(), hsts)
			next.ServeHTTP(w, r)
		})
	}
}

// securityHeaderValues are Helmet's headers, canonical keys and one-value slices made once:
// setting them is then a map assignment each. The slices are shared by every answer: a header
// added to (Header.Add) gets a new one (their capacity is 1), and nothing writes into them.
var securityHeaderValues, hstsHeaderValue = func() ([][2][]string, []string) {
	var out [][2][]string
	for _, kv := range [][2]string{
		{"Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"},
		{"Cross-Origin-Opener-Policy", "same-origin"},
		{"Cross-Origin-Resource-Policy", "same-origin"},
		{"Origin-Agent-Cluster", "?1"},
		{"Referrer-Policy", "no-referrer"},
		{"X-Content-Type-Options", "nosniff"},
		{"X-DNS-Prefetch-Control", "off"},
		{"X-Download-Options", "noopen"},
		{"X-Frame-Options", "DENY"},
		{"X-Permitted-Cross-Domain-Policies", "none"},
		{"X-XSS-Protection", "0"},
	} {
		out = append(out, [2][]string{{http.CanonicalHeaderKey(kv[0])}, {kv[1]}})
	}
	return out, []string{"max-age=31536000; includeSubDomains"}
}()

func setSecurityHeaders(h http.Header, hsts bool) {
	for _, kv := range securityHeaderValues {
		h[kv[0][0]] = kv[1][:1:1]
	}
	if hsts {
		h["Strict-Transport-Security"] = hstsHeaderValue[:1:1]
	}
}
