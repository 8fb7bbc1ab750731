package jwt_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/domain"
)

// BenchmarkVerify is the token check every authenticated request pays.
func BenchmarkVerify(b *testing.B) {
	i := issuer(&testing.T{}, keyA)
	tok, _, err := i.Issue(domain.Principal{UserID: uuid.New(), TenantID: uuid.New(), Role: domain.RoleShopper, SessionID: uuid.New()})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := i.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}
