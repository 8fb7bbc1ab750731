package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/flashsale/flashsale/internal/domain"
)

// Text a request carries must be text PostgreSQL can store and that reaches it unchanged: every
// string of a JSON body (member names too), the path and every query parameter. PostgreSQL
// refuses a NUL character (SQLSTATE 22021) and invalid UTF-8; Go's JSON decoder does not refuse
// invalid UTF-8 or an escaped lone surrogate (\ud800) but replaces them with U+FFFD, so they
// would be stored as something the client never sent. All three are refused here, at the edge,
// before any handler runs: one place for every field of every operation.

// unstorable says what is wrong with s, or "" when PostgreSQL can store it as it is.
func unstorable(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	case strings.IndexByte(s, 0) >= 0:
		return "contains a NUL character, which cannot be stored"
	}
	return ""
}

// textError is a JSON string that cannot be stored; where is its member path (a.b.0.c), empty
// for the body itself.
type textError struct {
	where  string
	reason string
}

func (e *textError) Error() string {
	if e.where == "" {
		return e.reason
	}
	return "field " + e.where + ": " + e.reason
}

// checkJSONText walks one well-formed JSON value and reports the first string, member name or
// value, that unstorable refuses or that holds an escaped lone surrogate. It reads the raw bytes
// of each string token, since the decoded string no longer shows what was replaced.
func checkJSONText(body []byte) error {
	type frame struct {
		object    bool
		expectKey bool   // an object's next string is a member name
		segment   string // the member name or the array index of the value being read
		index     int
	}
	var stack []*frame
	where := func(frames []*frame) string {
		parts := make([]string, len(frames))
		for i, f := range frames {
			parts[i] = f.segment
		}
		return strings.Join(parts, ".")
	}
	// valueDone moves the innermost container past the value just read.
	valueDone := func() {
		if len(stack) == 0 {
			return
		}
		f := stack[len(stack)-1]
		if f.object {
			f.expectKey = true
			return
		}
		f.index++
		f.segment = strconv.Itoa(f.index)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				stack = append(stack, &frame{object: v == '{', expectKey: v == '{', segment: "0"})
			default:
				stack = stack[:len(stack)-1]
				valueDone()
			}
		case string:
			reason := rawStringProblem(body[start:dec.InputOffset()], v)
			if n := len(stack); n > 0 && stack[n-1].expectKey {
				if reason != "" { // the name itself is not echoed
					return &textError{where: where(stack[:n-1]), reason: "a member name " + reason}
				}
				stack[n-1].segment, stack[n-1].expectKey = v, false
				continue
			}
			if reason != "" {
				return &textError{where: where(stack), reason: reason}
			}
			valueDone()
		default:
			valueDone()
		}
	}
}

// rawStringProblem checks one string token: raw is its bytes in the body (with the separators
// before it), decoded what the decoder made of them.
func rawStringProblem(raw []byte, decoded string) string {
	if !utf8.Valid(raw) {
		return "is not valid UTF-8"
	}
	if loneSurrogate(raw) {
		return "holds an escaped lone surrogate (\\uD800-\\uDFFF), which is not a character"
	}
	return unstorable(decoded)
}

// loneSurrogate reports whether the JSON string token in raw has a \u escape of a surrogate
// that is not a high one followed at once by an escaped low one.
func loneSurrogate(raw []byte) bool {
	escaped := func(i int) (rune, bool) { // the \uXXXX at raw[i:], if any
		if i+6 > len(raw) || raw[i] != '\\' || raw[i+1] != 'u' {
			return 0, false
		}
		n, err := strconv.ParseUint(string(raw[i+2:i+6]), 16, 16)
		return rune(n), err == nil
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		r, ok := escaped(i)
		if !ok {
			i++ // an escape of one character (\\, \", \n, ...): skip what it escapes
			continue
		}
		i += 5
		if !utf16.IsSurrogate(r) {
			continue
		}
		low, ok := escaped(i + 1)
		if r >= 0xdc00 || !ok || utf16.DecodeRune(r, low) == utf8.RuneError {
			return true
		}
		i += 6
	}
	return false
}

// refuseUnstorableText answers 400 for a path or query parameter that is not storable text. Body
// strings are checked by the validator's JSON decoder (decodeOneJSONValue).
func refuseUnstorableText(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refuse := func(where, reason string) {
			writeProblem(w, newProblem(r.Context(), domain.ErrInvalidRequest.Code, where+": "+reason), nil)
		}
		if reason := unstorable(r.URL.Path); reason != "" {
			refuse("path", reason)
			return
		}
		query, _ := url.ParseQuery(r.URL.RawQuery) // what does not parse is nobody's value
		for name, values := range query {
			if reason := unstorable(name); reason != "" {
				refuse("query parameter name", reason)
				return
			}
			for _, v := range values {
				if reason := unstorable(v); reason != "" {
					refuse("query parameter "+name, reason)
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}
