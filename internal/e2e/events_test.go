package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/testutil"
)

// TestOrderConfirmedFansOut: purchase -> order in PostgreSQL -> order.confirmed on Kafka ->
// the mail is written, the sale's figures are updated and the sold counter synced.
func TestOrderConfirmedFansOut(t *testing.T) {
	t.Parallel()
	sys := testutil.StartSystem(t, testutil.SystemOptions{Events: true})
	c := testutil.NewClient(sys.URL)
	sale := sys.CreateSale(t, 50, 5, -time.Second, time.Hour)
	shoppers := sys.CreateUsers(t, 3, domain.RoleShopper)
	_, adminToken := sys.Admin(t)
	ctx := context.Background()

	for i, u := range shoppers {
		r := buy(t, c, sys.TokenFor(t, u), sale.Sale.ID, "fanout-"+u.ID.String(), i+1)
		if r.Status != http.StatusAccepted {
			t.Fatalf("purchase: %d %s", r.Status, r.Body)
		}
	}
	statsPath := "/v1/admin/sales/" + sale.Sale.ID.String() + "/stats"
	var stats map[string]any
	testutil.WaitFor(t, 30*time.Second, "the analytics consumer to count 3 orders", func() bool {
		r := c.Do(t, testutil.Request{Method: "GET", Path: statsPath, Token: adminToken})
		stats = r.JSON(t)
		return r.Status == http.StatusOK && stats["orders"] == 3.0
	})
	if stats["units"] != 6.0 || stats["revenueCents"] != 6.0*1999 || stats["currency"] != "EUR" ||
		stats["firstOrderAt"] == nil || stats["lastOrderAt"] == nil {
		t.Fatalf("stats: %v", stats)
	}

	testutil.WaitFor(t, 30*time.Second, "three order mails", func() bool {
		files, _ := filepath.Glob(filepath.Join(sys.Config.MailDir, "*.eml"))
		return len(files) == 3
	})
	files, _ := filepath.Glob(filepath.Join(sys.Config.MailDir, "*.eml"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		mail := string(b)
		if !strings.Contains(mail, "Subject: Your order for "+sale.Sale.Name+" is confirmed") || !strings.Contains(mail, "To: <user") {
			t.Fatalf("mail %s:\n%s", f, mail)
		}
	}

	testutil.WaitFor(t, 30*time.Second, "the inventory-sync counter to reach 6", func() bool {
		sold, ok, err := sys.Store.SoldCounter(ctx, sale.Sale.TenantID, sale.Sale.ID)
		return err == nil && ok && sold == 6
	})
	wantNoDrift(t, sys, sale.Sale.ID, 6)
	pending, _, err := sys.Store.Backlog(ctx)
	if err != nil || pending != 0 {
		t.Fatalf("outbox backlog %d, %v", pending, err)
	}
}

// wantNoDrift runs an inventory-sync check and fails t unless it checked the sale and found
// PostgreSQL and Redis agreeing on units confirmed.
func wantNoDrift(t *testing.T, sys *testutil.System, saleID uuid.UUID, units int) {
	t.Helper()
	drifts, err := sys.App.SyncInventory.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range drifts {
		if d.SaleID == saleID {
			if d.Drift != 0 || d.PostgresSold != units || d.RedisConfirmed != units {
				t.Fatalf("drift: %+v, want 0 at %d units", d, units)
			}
			return
		}
	}
	t.Fatal("the sale was not checked")
}
