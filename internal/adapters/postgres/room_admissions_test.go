package postgres_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/adapters/postgres"
	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports/storetest"
	"github.com/flashsale/flashsale/internal/testutil"
)

// TestRoomAdmissionsAreRecordedOncePerShopper: the admissions a pass gives are kept per sale, a
// shopper's first one only (a second record of the same shopper changes nothing), read back
// per tenant and sale.
func TestRoomAdmissionsAreRecordedOncePerShopper(t *testing.T) {
	t.Parallel()
	pool, _ := testutil.NewPool(t, 4)
	st := postgres.NewStore(pool)
	f := storetest.NewFixture(t, st)
	tenant := f.Tenant("room")
	s := f.Sale(tenant.ID, "room", -time.Minute, time.Hour, -time.Hour)
	other := f.Sale(tenant.ID, "other", -time.Minute, time.Hour, -time.Hour)
	until := f.Now.Add(time.Minute)
	a, b := uuid.New(), uuid.New()
	if err := st.RecordAdmissions(f.Ctx, s, []domain.Admitted{{UserID: a, Until: until}, {UserID: b, Until: until}}); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordAdmissions(f.Ctx, s, []domain.Admitted{{UserID: a, Until: until.Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordAdmissions(f.Ctx, s, nil); err != nil {
		t.Fatal(err)
	}
	got, err := st.Admissions(f.Ctx, tenant.ID, s.ID)
	if err != nil || len(got) != 2 {
		t.Fatalf("Admissions = %v, %v; want 2", got, err)
	}
	for _, r := range got {
		if !r.Until.Equal(until) || (r.UserID != a && r.UserID != b) {
			t.Fatalf("admission %+v, want one of the first two, until %v", r, until)
		}
	}
	if got, err := st.Admissions(f.Ctx, tenant.ID, other.ID); err != nil || len(got) != 0 {
		t.Fatalf("another sale's admissions = %v, %v; want none", got, err)
	}
	if got, err := st.Admissions(f.Ctx, uuid.New(), s.ID); err != nil || len(got) != 0 {
		t.Fatalf("another tenant's view = %v, %v; want none", got, err)
	}
}
