package storetest

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
)

var tenantCases = []testCase{
	{"EnsureTenantCreatesOnce", testEnsureTenantOnce},
	{"ConcurrentEnsureTenantAgrees", testConcurrentEnsureTenant},
	{"UnknownAndInvalidSlugs", testTenantSlugs},
}

var userCases = []testCase{
	{"CreateAndRead", testUsersCreateAndRead},
	{"EmailTakenPerTenant", testUsersEmailTaken},
	{"NotFound", testUsersNotFound},
	{"ReplacePasswordHashOnlyIfUnchanged", testUsersReplacePasswordHash},
}

func testEnsureTenantOnce(t *testing.T, f *Fixture) {
	first, err := f.St.EnsureTenant(f.Ctx, "acme", "Acme Inc")
	if err != nil {
		t.Fatal(err)
	}
	if first.ID == uuid.Nil || first.Slug != "acme" || first.Name != "Acme Inc" || first.CreatedAt.IsZero() {
		t.Fatalf("EnsureTenant = %+v", first)
	}
	// Again, even under another name: the same tenant, unchanged.
	again, err := f.St.EnsureTenant(f.Ctx, "acme", "Renamed")
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != first.ID || again.Name != "Acme Inc" || !again.CreatedAt.Equal(first.CreatedAt) {
		t.Fatalf("second EnsureTenant = %+v, want %+v", again, first)
	}
	bySlug, err := f.St.TenantBySlug(f.Ctx, "acme")
	if err != nil || bySlug.ID != first.ID || bySlug.Name != "Acme Inc" {
		t.Fatalf("TenantBySlug = %+v, %v", bySlug, err)
	}
	if other := f.Tenant("globex"); other.ID == first.ID {
		t.Fatal("two slugs share a tenant")
	}
}

func testConcurrentEnsureTenant(t *testing.T, f *Fixture) {
	ids := make(chan uuid.UUID, 20)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			tn, err := f.St.EnsureTenant(f.Ctx, "globex", "Globex")
			if err != nil {
				t.Error(err)
				return
			}
			ids <- tn.ID
		})
	}
	wg.Wait()
	close(ids)
	var one uuid.UUID
	for id := range ids {
		if one == uuid.Nil {
			one = id
		}
		if id != one {
			t.Fatalf("concurrent EnsureTenant returned %s and %s", one, id)
		}
	}
}

func testTenantSlugs(t *testing.T, f *Fixture) {
	if _, err := f.St.TenantBySlug(f.Ctx, "nobody"); !errors.Is(err, domain.ErrTenantNotFound) {
		t.Fatalf("TenantBySlug(unknown) = %v, want ErrTenantNotFound", err)
	}
	for _, slug := range []string{"Not A Slug", "", "-leading-dash", "UPPER"} {
		if _, err := f.St.EnsureTenant(f.Ctx, slug, "x"); err == nil {
			t.Errorf("EnsureTenant accepted the invalid slug %q", slug)
		}
		if _, err := f.St.TenantBySlug(f.Ctx, slug); !errors.Is(err, domain.ErrTenantNotFound) {
			t.Errorf("TenantBySlug(%q) after a refusal = %v, want ErrTenantNotFound", slug, err)
		}
	}
}

// checkUser compares users field by field (CreatedAt by value).
func checkUser(t *testing.T, got, want domain.User) {
	t.Helper()
	if !got.CreatedAt.Equal(want.CreatedAt) {
		t.Fatalf("CreatedAt = %v, want %v", got.CreatedAt, want.CreatedAt)
	}
	got.CreatedAt, want.CreatedAt = time.Time{}, time.Time{}
	if got != want {
		t.Fatalf("user = %+v, want %+v", got, want)
	}
}

func testUsersCreateAndRead(t *testing.T, f *Fixture) {
	a := f.Tenant("tenant-a")
	alice := f.User(a.ID, "alice@example.com")
	got, err := f.St.UserByEmail(f.Ctx, a.ID, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	checkUser(t, got, alice)
	if got, err = f.St.UserByID(f.Ctx, a.ID, alice.ID); err != nil {
		t.Fatal(err)
	}
	checkUser(t, got, alice)
	admin := f.NewUser(a.ID, "admin@example.com")
	admin.Role = domain.RoleAdmin
	if err := f.St.CreateUser(f.Ctx, admin); err != nil {
		t.Fatal(err)
	}
	if got, err = f.St.UserByID(f.Ctx, a.ID, admin.ID); err != nil || got.Role != domain.RoleAdmin {
		t.Fatalf("admin = %+v, %v", got, err)
	}
}

// The same address in the same tenant is taken; in another tenant it is free.
func testUsersEmailTaken(t *testing.T, f *Fixture) {
	a, b := f.Tenant("tenant-a"), f.Tenant("tenant-b")
	alice := f.User(a.ID, "alice@example.com")
	taken := f.NewUser(a.ID, "alice@example.com")
	if err := f.St.CreateUser(f.Ctx, taken); !errors.Is(err, domain.ErrEmailTaken) {
		t.Fatalf("duplicate email: %v, want ErrEmailTaken", err)
	}
	if _, err := f.St.UserByID(f.Ctx, a.ID, taken.ID); !errors.Is(err, domain.ErrUserNotFound) {
		t.Fatalf("the refused user was stored: %v", err)
	}
	aliceB := f.User(b.ID, "alice@example.com")
	got, err := f.St.UserByEmail(f.Ctx, b.ID, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	checkUser(t, got, aliceB)
	if got, err = f.St.UserByEmail(f.Ctx, a.ID, "alice@example.com"); err != nil || got.ID != alice.ID {
		t.Fatalf("tenant A's alice = %+v, %v", got, err)
	}
}

func testUsersNotFound(t *testing.T, f *Fixture) {
	a, b := f.Tenant("tenant-a"), f.Tenant("tenant-b")
	alice := f.User(a.ID, "alice@example.com")
	f.User(a.ID, "admin@example.com")
	for name, lookup := range map[string]func() (domain.User, error){
		"unknown email":         func() (domain.User, error) { return f.St.UserByEmail(f.Ctx, a.ID, "bob@example.com") },
		"unknown id":            func() (domain.User, error) { return f.St.UserByID(f.Ctx, a.ID, uuid.New()) },
		"email in other tenant": func() (domain.User, error) { return f.St.UserByEmail(f.Ctx, b.ID, "admin@example.com") },
		"id in other tenant":    func() (domain.User, error) { return f.St.UserByID(f.Ctx, b.ID, alice.ID) },
		"unknown tenant":        func() (domain.User, error) { return f.St.UserByEmail(f.Ctx, uuid.New(), "alice@example.com") },
	} {
		if u, err := lookup(); !errors.Is(err, domain.ErrUserNotFound) {
			t.Errorf("%s: %+v, %v, want ErrUserNotFound", name, u, err)
		}
	}
}

// A rehash replaces the hash it read, and nothing else: not a hash changed meanwhile, not
// another tenant's user, not a user that does not exist.
func testUsersReplacePasswordHash(t *testing.T, f *Fixture) {
	a, b := f.Tenant("tenant-a"), f.Tenant("tenant-b")
	alice := f.User(a.ID, "alice@example.com")
	bob := f.User(a.ID, "bob@example.com")
	for name, tc := range map[string]struct {
		tenant, id uuid.UUID
		old        string
	}{
		"a stale hash":      {a.ID, alice.ID, "hash-of-someone-else"},
		"another tenant":    {b.ID, alice.ID, alice.PasswordHash},
		"an unknown user":   {a.ID, uuid.New(), alice.PasswordHash},
		"an unknown tenant": {uuid.New(), alice.ID, alice.PasswordHash},
	} {
		if replaced, err := f.St.ReplacePasswordHash(f.Ctx, tc.tenant, tc.id, tc.old, "new-hash"); err != nil || replaced {
			t.Errorf("%s: replaced %v, %v; want false", name, replaced, err)
		}
	}
	if got, err := f.St.UserByID(f.Ctx, a.ID, alice.ID); err != nil || got.PasswordHash != alice.PasswordHash {
		t.Fatalf("after refused replacements: %+v, %v", got, err)
	}
	replaced, err := f.St.ReplacePasswordHash(f.Ctx, a.ID, alice.ID, alice.PasswordHash, "new-hash")
	if err != nil || !replaced {
		t.Fatalf("replace: %v, %v", replaced, err)
	}
	got, err := f.St.UserByEmail(f.Ctx, a.ID, "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	want := alice
	want.PasswordHash = "new-hash"
	checkUser(t, got, want)
	if got, err := f.St.UserByID(f.Ctx, a.ID, bob.ID); err != nil || got.PasswordHash != bob.PasswordHash {
		t.Fatalf("bob's hash changed: %+v, %v", got, err)
	}
	// The old hash is stale now: a second rehash from it replaces nothing.
	if replaced, err := f.St.ReplacePasswordHash(f.Ctx, a.ID, alice.ID, alice.PasswordHash, "newer-hash"); err != nil || replaced {
		t.Fatalf("second replace from the old hash: %v, %v", replaced, err)
	}
}
