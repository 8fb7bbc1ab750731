package jwt_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	gojwt "github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/adapters/jwt"
	"github.com/flashsale/flashsale/internal/domain"
)

// FuzzVerify feeds Verify arbitrary strings. The fuzzer does not know the keys, so a string it
// hands in can only verify if it is a token issued with them, spelled exactly as issued: the
// canonical base64url of its header and claims and the HMAC of those as its signature. Anything
// else that verifies is a forgery or a second spelling of a real token (a malleable encoding)
// and fails the test, as do a panic and any error other than ErrUnauthenticated. The corpus
// starts from a genuine token and tampered variants of it.
//
// Each input is also used as the email of a principal that is issued a token, which must verify
// back to exactly that principal.
func FuzzVerify(f *testing.F) {
	const issuerName, audience = "flashsale", "flashsale-api"
	iss, err := jwt.NewIssuer(jwt.Config{Signing: keyA, Verifying: []jwt.Key{keyB}, Issuer: issuerName,
		Audience: audience, TTL: time.Hour, Leeway: 30 * time.Second})
	if err != nil {
		f.Fatal(err)
	}
	principal := domain.Principal{UserID: uuid.New(), TenantID: uuid.New(), SessionID: uuid.New(),
		Email: "ada@example.com", Role: domain.RoleShopper}
	genuine, _, err := iss.Issue(principal)
	if err != nil {
		f.Fatal(err)
	}
	// The genuine token must verify, or every refusal below proves nothing.
	if got, err := iss.Verify(genuine); err != nil || got != principal {
		f.Fatalf("the genuine token does not verify: %+v, %v", got, err)
	}

	parts := strings.Split(genuine, ".")
	if len(parts) != 3 {
		f.Fatalf("issued token has %d segments", len(parts))
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	// flip replaces the character at i of segment seg by another base64url character; xor
	// picks which bits of its 6 change.
	flip := func(seg, i, xor int) string {
		p := append([]string(nil), parts...)
		s := []byte(p[seg])
		s[i] = alphabet[strings.IndexByte(alphabet, s[i])^xor]
		p[seg] = string(s)
		return strings.Join(p, ".")
	}
	now := time.Now()
	claims := func(role string) gojwt.MapClaims {
		return gojwt.MapClaims{"iss": issuerName, "aud": audience, "sub": principal.UserID.String(),
			"tid": principal.TenantID.String(), "sid": principal.SessionID.String(), "role": role,
			"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "nbf": now.Unix()}
	}
	sig := parts[2]
	seeds := []string{
		genuine,
		flip(2, len(sig)/2, 1),      // one signature character
		flip(2, 0, 32),              // the first signature character
		flip(1, len(parts[1])/2, 1), // one payload character
		flip(0, len(parts[0])/2, 1), // one header character
		// The last signature character, in the bits of it base64 does not carry.
		flip(2, len(sig)-1, 1), flip(2, len(sig)-1, 2), flip(2, len(sig)-1, 3),
		genuine + "\r", // characters base64 decoding skips
		parts[0] + "." + parts[1] + "." + sig[:10] + "\n" + sig[10:],
		parts[0] + "." + parts[1] + ".",              // signature stripped
		parts[0] + "." + parts[1],                    // two segments
		genuine + "." + sig,                          // four segments
		" " + genuine,                                // padded
		parts[0] + "." + parts[1] + "." + sig + "==", // padded base64
		parts[1] + "." + parts[0] + "." + sig,        // segments swapped
		strings.ToUpper(genuine),                     // case changed
		signToken(f, gojwt.SigningMethodNone, gojwt.UnsafeAllowNoneSignatureType, keyA.ID, claims("admin")),
		signToken(f, gojwt.SigningMethodHS256, []byte(strings.Repeat("Z", 32)), keyA.ID, claims("admin")),
		signToken(f, gojwt.SigningMethodHS512, keyA.Secret, keyA.ID, claims("shopper")),
		signToken(f, gojwt.SigningMethodHS256, keyA.Secret, "", claims("shopper")),
		signToken(f, gojwt.SigningMethodHS256, keyA.Secret, "../../a", claims("shopper")),
		"eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.e30.",
		"", ".", "..", "...", "a.b.c", "not.a.jwt", "null", "{}", "\x00", "Bearer " + genuine,
	}
	for _, s := range seeds {
		f.Add(s)
	}

	f.Fuzz(func(t *testing.T, token string) {
		got, err := iss.Verify(token)
		switch {
		case token == genuine:
			if err != nil || got != principal {
				t.Fatalf("the genuine token = %+v, %v; want %+v", got, err, principal)
			}
		case err == nil:
			// Tokens issued by another fuzzing process (same keys) verify too; they are canonical.
			if why := notAsIssued(token); why != "" {
				t.Fatalf("a token that was never issued verifies (%s): %q -> %+v", why, token, got)
			}
		case !errors.Is(err, domain.ErrUnauthenticated):
			t.Fatalf("Verify(%q) = %v, want ErrUnauthenticated", token, err)
		case got != (domain.Principal{}):
			t.Fatalf("a refused token still yields a principal: %+v", got)
		}

		// Round trip: any email (JSON carries Unicode text only, so valid UTF-8) comes back as is.
		if !utf8.ValidString(token) {
			return
		}
		sum := sha256.Sum256([]byte(token))
		p := domain.Principal{UserID: uuid.Must(uuid.FromBytes(sum[:16])), TenantID: uuid.Must(uuid.FromBytes(sum[16:])),
			SessionID: principal.SessionID, Email: token, Role: domain.RoleShopper}
		if len(token)%2 == 1 {
			p.Role = domain.RoleAdmin
		}
		issued, _, err := iss.Issue(p)
		if err != nil {
			t.Fatalf("Issue(%+v): %v", p, err)
		}
		if back, err := iss.Verify(issued); err != nil || back != p {
			t.Fatalf("issued token does not round-trip: %+v, %v; want %+v", back, err, p)
		}
	})
}

// notAsIssued says why token is not spelled the way Issue spells tokens, "" if it is: three
// segments, header and claims in canonical unpadded base64url, and the HS256 signature of the
// key its kid names over them, canonically encoded too.
func notAsIssued(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "not three segments"
	}
	enc := base64.RawURLEncoding.Strict()
	var header struct {
		Alg, Kid string
	}
	for i, seg := range parts[:2] {
		raw, err := enc.DecodeString(seg)
		if err != nil || enc.EncodeToString(raw) != seg {
			return fmt.Sprintf("segment %d is not canonical base64url", i)
		}
		if i == 0 && json.Unmarshal(raw, &header) != nil {
			return "header is not JSON"
		}
	}
	var secret []byte
	for _, k := range []jwt.Key{keyA, keyB} {
		if k.ID == header.Kid {
			secret = k.Secret
		}
	}
	if header.Alg != "HS256" || secret == nil {
		return "not HS256 with a known key"
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if parts[2] != enc.EncodeToString(mac.Sum(nil)) {
		return "signature is not the canonical HMAC"
	}
	return ""
}
