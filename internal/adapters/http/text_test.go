package http

import (
	"errors"
	"testing"
)

// TestCheckJSONText: every string of a body, at any depth, member names too, must be text
// PostgreSQL stores as sent; the error names where it is.
func TestCheckJSONText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, body string
		where      string // "" with ok: no error
		ok         bool
	}{
		{name: "plain", body: `{"name": "Sneakers", "n": 1, "b": true, "z": null}`, ok: true},
		{name: "accents and markup", body: `{"name": "Ünïcödé <b>x</b> é"}`, ok: true},
		{name: "escaped surrogate pair", body: `{"name": "\ud83d\ude00 \uD83D\uDE00"}`, ok: true},
		{name: "escaped backslash before u0000", body: `{"name": "a\\u0000b"}`, ok: true},
		{name: "escaped backslash before ud800", body: `{"name": "a\\ud800"}`, ok: true},
		{name: "escaped quote and escapes", body: `{"name": "a\"\n\t\/\u00e9"}`, ok: true},
		{name: "not a string at all", body: `[1, 2.5, {"a": [true, false]}]`, ok: true},
		{name: "escaped NUL", body: `{"name": "a\u0000b"}`, where: "name"},
		{name: "invalid byte", body: "{\"name\": \"a\xffb\"}", where: "name"},
		{name: "encoded surrogate (CESU)", body: "{\"name\": \"a\xed\xa0\x80b\"}", where: "name"},
		{name: "lone high surrogate", body: `{"name": "a\ud83db"}`, where: "name"},
		{name: "high surrogate at the end", body: `{"name": "a\ud83d"}`, where: "name"},
		{name: "lone low surrogate", body: `{"name": "a\ude00b"}`, where: "name"},
		{name: "two high surrogates", body: `{"name": "\ud83d\ud83d"}`, where: "name"},
		{name: "nested in an array", body: `{"items": [{"a": "ok"}, {"a": "x\u0000"}]}`, where: "items.1.a"},
		{name: "after a nested object", body: `{"o": {"a": 1, "b": [1, 2]}, "c": "x\u0000"}`, where: "c"},
		{name: "a member name", body: `{"o": {"na\u0000me": 1}}`, where: "o"},
		{name: "a top-level member name", body: `{"na\u0000me": 1}`, where: ""},
		{name: "the body is the string", body: `"a\u0000"`, where: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := checkJSONText([]byte(tc.body))
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var te *textError
			if !errors.As(err, &te) {
				t.Fatalf("got %v, want a textError", err)
			}
			if te.where != tc.where {
				t.Fatalf("where %q, want %q (%v)", te.where, tc.where, err)
			}
		})
	}
}
