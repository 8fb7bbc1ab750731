package e2e

import (
	"net/http"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/testutil"
)

// TestShopperJourney walks the README's tour: admin creates a sale, a shopper registers, logs
// in, buys, and sees the order turn confirmed.
func TestShopperJourney(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{})
	c := testutil.NewClient(sys.URL)

	login := c.Do(t, testutil.Request{Method: "POST", Path: "/v1/auth/login",
		Body: map[string]any{"email": sys.Config.AdminEmail, "password": testutil.AdminPassword}})
	if login.Status != http.StatusOK {
		t.Fatalf("admin login: %d %s", login.Status, login.Body)
	}
	adminToken := login.JSON(t)["accessToken"].(string)

	start := time.Now().Add(-time.Second).UTC()
	created := c.Do(t, testutil.Request{Method: "POST", Path: "/v1/admin/sales", Token: adminToken, Body: map[string]any{
		"name": "Midnight drop", "priceCents": 4200, "currency": "EUR", "totalStock": 10, "perUserLimit": 2,
		"startsAt": start.Format(time.RFC3339), "endsAt": start.Add(time.Hour).Format(time.RFC3339),
	}})
	if created.Status != http.StatusCreated {
		t.Fatalf("create sale: %d %s", created.Status, created.Body)
	}
	sale := created.JSON(t)
	saleID := sale["id"].(string)
	if sale["status"] != "active" || sale["remaining"] != 10.0 {
		t.Fatalf("new sale: %v", sale)
	}

	reg := c.Do(t, testutil.Request{Method: "POST", Path: "/v1/auth/register",
		Body: map[string]any{"email": "Ada@Example.com", "password": "correct-horse-battery"}})
	if reg.Status != http.StatusCreated || reg.JSON(t)["email"] != "ada@example.com" || reg.JSON(t)["role"] != "shopper" {
		t.Fatalf("register: %d %s", reg.Status, reg.Body)
	}
	again := c.Do(t, testutil.Request{Method: "POST", Path: "/v1/auth/register",
		Body: map[string]any{"email": "ada@example.com", "password": "another-password-1"}})
	if again.Status != http.StatusConflict || again.ProblemType() != "email-taken" {
		t.Fatalf("second register: %d %s", again.Status, again.Body)
	}
	bad := c.Do(t, testutil.Request{Method: "POST", Path: "/v1/auth/login",
		Body: map[string]any{"email": "ada@example.com", "password": "wrong-password"}})
	if bad.Status != http.StatusUnauthorized || bad.ProblemType() != "invalid-credentials" {
		t.Fatalf("wrong password: %d %s", bad.Status, bad.Body)
	}
	login = c.Do(t, testutil.Request{Method: "POST", Path: "/v1/auth/login",
		Body: map[string]any{"email": "ada@example.com", "password": "correct-horse-battery"}})
	tok := login.JSON(t)
	if login.Status != http.StatusOK || tok["tokenType"] != "Bearer" || tok["expiresIn"] != 900.0 {
		t.Fatalf("login: %d %s", login.Status, login.Body)
	}
	token := tok["accessToken"].(string)
	me := c.Do(t, testutil.Request{Method: "GET", Path: "/v1/me", Token: token})
	if me.Status != http.StatusOK || me.JSON(t)["email"] != "ada@example.com" {
		t.Fatalf("me: %d %s", me.Status, me.Body)
	}

	buy := c.Do(t, testutil.Request{Method: "POST", Path: "/v1/sales/" + saleID + "/orders", Token: token,
		Header: map[string]string{"Idempotency-Key": "journey-0001"}, Body: map[string]any{"quantity": 2}})
	if buy.Status != http.StatusAccepted {
		t.Fatalf("buy: %d %s", buy.Status, buy.Body)
	}
	order := buy.JSON(t)
	if order["status"] != "pending" || buy.Header.Get("Location") != "/v1/orders/"+order["id"].(string) {
		t.Fatalf("accepted order: %v, Location %q", order, buy.Header.Get("Location"))
	}

	var got map[string]any
	testutil.WaitFor(t, 10*time.Second, "the order to be confirmed", func() bool {
		r := c.Do(t, testutil.Request{Method: "GET", Path: buy.Header.Get("Location"), Token: token})
		got = r.JSON(t)
		return r.Status == http.StatusOK && got["status"] == "confirmed"
	})
	if got["amountCents"] != 8400.0 || got["currency"] != "EUR" || got["createdAt"] != order["createdAt"] {
		t.Fatalf("confirmed order: %v (accepted as %v)", got, order)
	}

	inv := c.Do(t, testutil.Request{Method: "GET", Path: "/v1/sales/" + saleID + "/inventory"}).JSON(t)
	if inv["remaining"] != 8.0 || inv["totalStock"] != 10.0 || inv["status"] != "active" {
		t.Fatalf("inventory: %v", inv)
	}
	list := c.Do(t, testutil.Request{Method: "GET", Path: "/v1/orders", Token: token}).JSON(t)
	if items := list["items"].([]any); len(items) != 1 || items[0].(map[string]any)["id"] != order["id"] {
		t.Fatalf("order history: %v", list)
	}

	// Another shopper cannot see the order; the admin can.
	other := sys.CreateUsers(t, 1, "shopper")[0]
	if r := c.Do(t, testutil.Request{Method: "GET", Path: buy.Header.Get("Location"), Token: sys.TokenFor(t, other)}); r.Status != http.StatusNotFound {
		t.Fatalf("another shopper reading the order: %d", r.Status)
	}
	if r := c.Do(t, testutil.Request{Method: "GET", Path: buy.Header.Get("Location"), Token: adminToken}); r.Status != http.StatusOK {
		t.Fatalf("admin reading the order: %d", r.Status)
	}
	if r := c.Do(t, testutil.Request{Method: "GET", Path: "/openapi.yaml"}); r.Status != http.StatusOK || len(r.Body) < 1000 {
		t.Fatalf("spec: %d", r.Status)
	}
	if r := c.Do(t, testutil.Request{Method: "GET", Path: "/readyz"}); r.Status != http.StatusOK {
		t.Fatalf("readyz: %d %s", r.Status, r.Body)
	}
}
