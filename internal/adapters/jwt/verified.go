package jwt

import (
	"sync"
	"time"

	"github.com/flashsale/flashsale/internal/domain"
)

// verifiedTokensPerGeneration bounds the cache of verified tokens: at most twice this many are
// held (about 150 bytes each), the older half dropped as a whole when the newer one fills.
const verifiedTokensPerGeneration = 1 << 15

// verifiedTokens caches what verified tokens proved, by the SHA-256 of their exact text (a token
// spelled otherwise is verified afresh, and a forgery never verified is never in it), until
// their expiry. Two generations bound it without bookkeeping per entry.
type verifiedTokens struct {
	per      int
	mu       sync.RWMutex
	cur, old map[[32]byte]verifiedToken
}

type verifiedToken struct {
	principal domain.Principal
	until     time.Time
}

func newVerifiedTokens(per int) *verifiedTokens {
	return &verifiedTokens{per: per, cur: make(map[[32]byte]verifiedToken, per)}
}

func (v *verifiedTokens) get(sum [32]byte, now time.Time) (domain.Principal, bool) {
	v.mu.RLock()
	t, ok := v.cur[sum]
	if !ok {
		t, ok = v.old[sum]
	}
	v.mu.RUnlock()
	if !ok || !now.Before(t.until) {
		return domain.Principal{}, false
	}
	return t.principal, true
}

func (v *verifiedTokens) put(sum [32]byte, p domain.Principal, until time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.cur) >= v.per {
		v.old, v.cur = v.cur, make(map[[32]byte]verifiedToken, v.per)
	}
	v.cur[sum] = verifiedToken{principal: p, until: until}
}
