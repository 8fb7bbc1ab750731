package domain_test

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
)

func confirmedOrder() domain.Order {
	created := time.Date(2030, 1, 2, 12, 0, 0, 123456000, time.UTC)
	confirmed := created.Add(1500 * time.Millisecond)
	return domain.Order{
		ID: uuid.New(), TenantID: uuid.New(), SaleID: uuid.New(), UserID: uuid.New(), Quantity: 3,
		IdempotencyKey: "key-1", Status: domain.OrderConfirmed, UnitPriceCents: 1999, AmountCents: 5997,
		Currency: "EUR", CreatedAt: created, ConfirmedAt: &confirmed,
	}
}

// The event id depends on the order id alone: the same order confirmed again (a redelivered
// task, a later time) yields the same id, two orders two ids.
func TestOrderConfirmedEventIsDeterministicPerOrder(t *testing.T) {
	t.Parallel()
	o := confirmedOrder()
	at := *o.ConfirmedAt
	first := domain.OrderConfirmedEvent(o, at)
	again := domain.OrderConfirmedEvent(o, at.Add(time.Hour))
	if first.ID == uuid.Nil || first.ID != again.ID {
		t.Fatalf("event ids %s and %s for the same order, want one non-nil id", first.ID, again.ID)
	}
	if first.ID == o.ID {
		t.Fatalf("event id equals the order id %s", o.ID)
	}
	// Only the id counts: the same id with other values is the same fact.
	changed := o
	changed.Quantity, changed.AmountCents = 1, 1999
	if got := domain.OrderConfirmedEvent(changed, at).ID; got != first.ID {
		t.Fatalf("same order id, other fields: event id %s, want %s", got, first.ID)
	}
	other := confirmedOrder()
	if got := domain.OrderConfirmedEvent(other, at).ID; got == first.ID {
		t.Fatalf("orders %s and %s share event id %s", o.ID, other.ID, got)
	}
	// Stable across releases: the namespace and name scheme are part of the contract.
	if want := uuid.NewSHA1(uuid.MustParse("6f1c1b7e-3a51-4d53-9c61-8e7e1f0a2b44"),
		[]byte("order.confirmed:"+o.ID.String())); first.ID != want {
		t.Fatalf("event id %s, want %s", first.ID, want)
	}

	if first.TenantID != o.TenantID || first.Topic != domain.TopicOrderConfirmed || first.Key != o.ID.String() ||
		first.Type != domain.EventOrderConfirmed || !first.CreatedAt.Equal(at) {
		t.Fatalf("event = %+v, want tenant %s, topic %s, key %s, type %s, created %v", first, o.TenantID,
			domain.TopicOrderConfirmed, o.ID, domain.EventOrderConfirmed, at)
	}
}

func TestOrderConfirmedPayloadRoundTrips(t *testing.T) {
	t.Parallel()
	o := confirmedOrder()
	at := *o.ConfirmedAt
	ev := domain.OrderConfirmedEvent(o, at)
	got, err := domain.DecodeOrderConfirmed(ev.Payload)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !got.OccurredAt.Equal(at) || !got.OrderedAt.Equal(o.CreatedAt) {
		t.Fatalf("occurredAt %v orderedAt %v, want %v and %v", got.OccurredAt, got.OrderedAt, at, o.CreatedAt)
	}
	got.OccurredAt, got.OrderedAt = time.Time{}, time.Time{}
	want := domain.OrderConfirmedV1{
		EventID: ev.ID, Type: domain.EventOrderConfirmed, Version: 1, TenantID: o.TenantID, OrderID: o.ID,
		SaleID: o.SaleID, UserID: o.UserID, Quantity: 3, UnitPriceCents: 1999, AmountCents: 5997, Currency: "EUR",
	}
	if got != want {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}

	// The wire names are the ones asyncapi/flashsale.yaml requires, and nothing else.
	var fields map[string]any
	if err := json.Unmarshal(ev.Payload, &fields); err != nil {
		t.Fatal(err)
	}
	wantKeys := []string{"amountCents", "currency", "eventId", "occurredAt", "orderId", "orderedAt", "quantity",
		"saleId", "tenantId", "type", "unitPriceCents", "userId", "version"}
	if keys := slices.Sorted(maps.Keys(fields)); !slices.Equal(keys, wantKeys) {
		t.Fatalf("payload keys %v, want %v", keys, wantKeys)
	}
	if fields["occurredAt"] != "2030-01-02T12:00:01.623456Z" || fields["orderedAt"] != "2030-01-02T12:00:00.123456Z" {
		t.Fatalf("times on the wire: occurredAt %v, orderedAt %v", fields["occurredAt"], fields["orderedAt"])
	}
}

func TestDecodeOrderConfirmedRefusesPoison(t *testing.T) {
	t.Parallel()
	valid := domain.OrderConfirmedEvent(confirmedOrder(), time.Now()).Payload
	mutated := func(change func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(valid, &m); err != nil {
			t.Fatal(err)
		}
		change(m)
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cases := map[string][]byte{
		"garbage":          []byte("not json at all"),
		"empty":            nil,
		"json null":        []byte("null"),
		"empty object":     []byte("{}"),
		"array":            []byte("[1,2]"),
		"wrong type":       mutated(func(m map[string]any) { m["type"] = "order.cancelled" }),
		"no type":          mutated(func(m map[string]any) { delete(m, "type") }),
		"version 2":        mutated(func(m map[string]any) { m["version"] = 2 }),
		"version 0":        mutated(func(m map[string]any) { m["version"] = 0 }),
		"no version":       mutated(func(m map[string]any) { delete(m, "version") }),
		"version string":   mutated(func(m map[string]any) { m["version"] = "1" }),
		"no eventId":       mutated(func(m map[string]any) { delete(m, "eventId") }),
		"nil eventId":      mutated(func(m map[string]any) { m["eventId"] = uuid.Nil.String() }),
		"bad eventId":      mutated(func(m map[string]any) { m["eventId"] = "not-a-uuid" }),
		"no orderId":       mutated(func(m map[string]any) { delete(m, "orderId") }),
		"no saleId":        mutated(func(m map[string]any) { delete(m, "saleId") }),
		"no tenantId":      mutated(func(m map[string]any) { delete(m, "tenantId") }),
		"no userId":        mutated(func(m map[string]any) { delete(m, "userId") }),
		"quantity 0":       mutated(func(m map[string]any) { m["quantity"] = 0 }),
		"no quantity":      mutated(func(m map[string]any) { delete(m, "quantity") }),
		"negative qty":     mutated(func(m map[string]any) { m["quantity"] = -2 }),
		"fractional qty":   mutated(func(m map[string]any) { m["quantity"] = 1.5 }),
		"bad orderedAt":    mutated(func(m map[string]any) { m["orderedAt"] = "yesterday" }),
		"truncated object": valid[:len(valid)/2],
	}
	for name, payload := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, err := domain.DecodeOrderConfirmed(payload); !errors.Is(err, domain.ErrPermanent) {
				t.Fatalf("DecodeOrderConfirmed(%q) = %v, want an error wrapping ErrPermanent", payload, err)
			}
		})
	}
	// The untouched payload, and one re-encoded through a map (other key order), decode.
	for _, b := range [][]byte{valid, mutated(func(map[string]any) {})} {
		if _, err := domain.DecodeOrderConfirmed(b); err != nil {
			t.Fatalf("valid payload refused: %v", err)
		}
	}
}
