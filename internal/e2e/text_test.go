package e2e

import (
	"context"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/testutil"
)

// TestTextPostgreSQLCannotStoreIsRefused: a string PostgreSQL cannot store (a NUL character) or
// that JSON decoding would silently change (invalid UTF-8, an escaped lone surrogate: both become
// U+FFFD) is refused with a 400 problem naming the field, before anything is written, wherever
// it comes: a sale's name on create and change, an email or password on register and login, a
// query parameter. Text that is merely unusual (accents, emoji written as a surrogate pair,
// markup) is stored exactly as sent.
func TestTextPostgreSQLCannotStoreIsRefused(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true})
	c := testutil.NewClient(sys.URL)
	ctx := context.Background()
	_, adminToken := sys.Admin(t)
	sale := sys.CreateSale(t, 10, 2, time.Hour, time.Hour)
	salePath := "/v1/admin/sales/" + sale.Sale.ID.String()

	start := time.Now().Add(time.Hour).UTC()
	saleBody := func(name string) string {
		return `{"name": "` + name + `", "priceCents": 100, "currency": "EUR", "totalStock": 5, "perUserLimit": 1, "startsAt": "` +
			start.Format(time.RFC3339) + `", "endsAt": "` + start.Add(time.Hour).Format(time.RFC3339) + `"}`
	}
	counts := func() map[string]int {
		out := map[string]int{}
		for _, table := range []string{"users", "sales", "orders"} {
			var n int
			if err := sys.Pool.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
				t.Fatal(err)
			}
			out[table] = n
		}
		return out
	}
	before := counts()

	hostile := map[string]string{
		"an escaped NUL":           `Sneakers\u0000drop`,
		"a raw invalid byte":       "Sneakers\xffdrop",
		"a truncated sequence":     "Sneakers\xe2\x82drop",
		"an encoded surrogate":     "Sneakers\xed\xa0\x80drop",
		"an escaped lone high":     `Sneakers\ud83ddrop`,
		"an escaped lone low":      `Sneakers\ude00drop`,
		"an escaped reversed pair": `Sneakers\ude00\ud83ddrop`,
	}
	for what, s := range hostile {
		for _, tc := range []struct {
			name, method, path, token, body, field string
		}{
			{"create sale, name with " + what, "POST", "/v1/admin/sales", adminToken, saleBody(s), "name"},
			{"change sale, name with " + what, "PATCH", salePath, adminToken, `{"name": "` + s + `"}`, "name"},
			{"register, email with " + what, "POST", "/v1/auth/register", "", `{"email": "ada` + s + `@example.com", "password": "Tr0ub4dor&3-horse"}`, "email"},
			{"register, password with " + what, "POST", "/v1/auth/register", "", `{"email": "bob@example.com", "password": "Tr0ub4dor&3` + s + `"}`, "password"},
			{"login, email with " + what, "POST", "/v1/auth/login", "", `{"email": "` + sys.Config.AdminEmail + s + `", "password": "x"}`, "email"},
			{"login, password with " + what, "POST", "/v1/auth/login", "", `{"email": "` + sys.Config.AdminEmail + `", "password": "` + testutil.AdminPassword + s + `"}`, "password"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := c.Do(t, testutil.Request{Method: tc.method, Path: tc.path, Token: tc.token, Body: tc.body})
				expectProblem(t, tc.name, r, http.StatusBadRequest, "invalid-request")
				if detail, _ := r.JSON(t)["detail"].(string); !strings.Contains(detail, "field "+tc.field+":") {
					t.Errorf("the detail %q does not name the field %s", detail, tc.field)
				}
			})
		}
	}
	for _, tc := range []struct{ name, path string }{
		{"query parameter with an encoded NUL", "/v1/sales?status=active%00"},
		{"query parameter with invalid UTF-8", "/v1/sales?status=%FF"},
		{"live events tenant with an encoded NUL", "/v1/ws?tenant=default%00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.Do(t, testutil.Request{Method: "GET", Path: tc.path})
			expectProblem(t, tc.name, r, http.StatusBadRequest, "invalid-request")
		})
	}

	if got := counts(); !maps.Equal(got, before) {
		t.Errorf("rows changed: before %v, after %v", before, got)
	}
	if r := c.Do(t, testutil.Request{Method: "GET", Path: "/v1/sales/" + sale.Sale.ID.String()}); r.JSON(t)["name"] != sale.Sale.Name {
		t.Errorf("the sale's name changed: %s", r.Body)
	}

	// Unusual but valid text goes through unchanged.
	const unusual = `Ünïcödé \ud83d\ude00 <b>drop</b> \u00e9`
	const stored = "Ünïcödé 😀 <b>drop</b> é"
	r := c.Do(t, testutil.Request{Method: "POST", Path: "/v1/admin/sales", Token: adminToken, Body: saleBody(unusual)})
	if r.Status != http.StatusCreated || r.JSON(t)["name"] != stored {
		t.Fatalf("create sale named %q: %d %s", stored, r.Status, r.Body)
	}
	var name string
	if err := sys.Pool.QueryRow(ctx, "SELECT name FROM sales WHERE id = $1", r.JSON(t)["id"]).Scan(&name); err != nil || name != stored {
		t.Fatalf("stored name %q (%v), want %q", name, err, stored)
	}
}

// TestEmailIsStoredAsSent: an address is taken only in the one form it is stored and answered
// in. The generated Email type rewrites what net/mail parses ("Ada <ada@example.com>", a quoted
// local part) and then refuses to marshal what it made, so such a registration was stored and
// answered 500, and its account's every /v1/me too; now it is a 400 and nothing is stored.
func TestEmailIsStoredAsSent(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{NoWorker: true})
	c := testutil.NewClient(sys.URL)
	users := func() (n int) {
		if err := sys.Pool.QueryRow(context.Background(), "SELECT count(*) FROM users").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := users()
	for _, email := range []string{
		`"<i id=pwn>ada</i>"@example.com`,
		`"ada lovelace"@example.com`,
		`ada(comment)@example.com`,
		`Ada <ada@example.com>`,
		`ada@example..com`,
	} {
		r := c.Do(t, testutil.Request{Method: "POST", Path: "/v1/auth/register",
			Body: map[string]any{"email": email, "password": "Tr0ub4dor&3-horse"}})
		expectProblem(t, email, r, http.StatusBadRequest, "invalid-request")
		if detail, _ := r.JSON(t)["detail"].(string); !strings.Contains(detail, "field email:") {
			t.Errorf("%s: the detail %q does not name the field", email, detail)
		}
	}
	if got := users(); got != before {
		t.Fatalf("users went from %d to %d", before, got)
	}
	for _, email := range []string{"ada.lovelace+shop@example.com", "o'brien@example.co.uk", "ünï@exämple.com"} {
		r := c.Do(t, testutil.Request{Method: "POST", Path: "/v1/auth/register",
			Body: map[string]any{"email": email, "password": "Tr0ub4dor&3-horse"}})
		if r.Status != http.StatusCreated || r.JSON(t)["email"] != email {
			t.Fatalf("register %s: %d %s", email, r.Status, r.Body)
		}
	}
}
