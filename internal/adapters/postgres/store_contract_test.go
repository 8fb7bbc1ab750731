package postgres_test

import (
	"testing"

	"github.com/flashsale/flashsale/internal/adapters/postgres"
	"github.com/flashsale/flashsale/internal/ports/storetest"
	"github.com/flashsale/flashsale/internal/testutil"
)

// TestStoreContract runs the contract of the repository ports, the outbox and the consumers'
// records against the Store, each case on a fresh database of its own (the outbox is one queue
// for every tenant).
func TestStoreContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) storetest.Store {
		pool, _ := testutil.NewPool(t, 8)
		return postgres.NewStore(pool)
	})
}
