package ws

import (
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/google/uuid"
)

// TestHubIndexesForgetAClientRemoved: the indexes Deliver walks (by sale, by tenant, by user)
// hold a client while it is connected, follow its subscriptions, and keep nothing of it once it
// is gone.
func TestHubIndexesForgetAClientRemoved(t *testing.T) {
	t.Parallel()
	hub := NewHub(Config{SendBuffer: 4}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	tenant, user, s1, s2 := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	c := newClient(Identity{TenantID: tenant, UserID: &user}, []uuid.UUID{s1})
	if !hub.add(c) {
		t.Fatal("hub full")
	}
	hub.subscribe(c, &s2, true)
	hub.subscribe(c, nil, true)
	if len(hub.bySale[s1]) != 1 || len(hub.bySale[s2]) != 1 || len(hub.allOf[tenant]) != 1 || len(hub.byUser[user]) != 1 {
		t.Fatalf("indexes while connected: bySale %v, allOf %v, byUser %v", hub.bySale, hub.allOf, hub.byUser)
	}
	hub.subscribe(c, &s1, false)
	if _, ok := hub.bySale[s1]; ok {
		t.Fatalf("s1 still indexed after its unsubscribe: %v", hub.bySale)
	}
	hub.remove(c)
	hub.subscribe(c, &s1, true) // a late message of the closed connection: ignored
	if len(hub.bySale)+len(hub.allOf)+len(hub.byUser)+len(hub.clients) != 0 {
		t.Fatalf("indexes after removal: bySale %v, allOf %v, byUser %v, clients %d", hub.bySale, hub.allOf, hub.byUser, len(hub.clients))
	}
}

// TestSnapshotsReplaceWaitingOnes: a client behind on its events keeps one snapshot per type and
// sale, the newest, in its place among the others; other events queue up to the buffer, beyond
// which the client is slow.
func TestSnapshotsReplaceWaitingOnes(t *testing.T) {
	t.Parallel()
	c := newClient(Identity{TenantID: uuid.New()}, nil)
	s1, s2 := uuid.New(), uuid.New()
	snap := func(sale uuid.UUID, v string) queued {
		return queued{msg: []byte(v), snapshot: true, typ: "inventory:updated", sale: sale}
	}
	const limit = 4
	for _, q := range []queued{snap(s1, "stock-1"), {msg: []byte("confirmed"), typ: "order:confirmed", sale: s1},
		snap(s1, "stock-2"), snap(s2, "other-sale"), snap(s1, "stock-3")} {
		if !c.offer(q, limit) {
			t.Fatalf("%s refused", q.msg)
		}
	}
	texts := func(batch []queued) []string {
		var out []string
		for _, q := range batch {
			out = append(out, string(q.msg))
		}
		return out
	}
	// Snapshots not due yet: the other events go, the snapshots stay, in their order.
	batch, held := c.take(nil, false)
	if got, want := texts(batch), []string{"confirmed"}; !held || !slices.Equal(got, want) {
		t.Fatalf("taken without snapshots: %v (held %v), want %v and snapshots held", got, held, want)
	}
	if !c.offer(snap(s2, "other-sale-2"), limit) {
		t.Fatal("snapshot refused")
	}
	batch, held = c.take(nil, true)
	if got, want := texts(batch), []string{"stock-3", "other-sale-2"}; held || !slices.Equal(got, want) {
		t.Fatalf("taken with snapshots: %v (held %v), want %v", got, held, want)
	}
	for i := range limit {
		if !c.offer(queued{msg: []byte("e"), typ: "e"}, limit) {
			t.Fatalf("event %d refused below the limit", i)
		}
	}
	if c.offer(queued{msg: []byte("e"), typ: "e"}, limit) {
		t.Fatal("an event beyond the buffer was queued")
	}
	if !c.offer(snap(s1, "stock-4"), limit+1) {
		t.Fatal("a snapshot refused with room left")
	}
}
