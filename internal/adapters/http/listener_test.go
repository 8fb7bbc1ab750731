package http

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestServerAnswerAsProblem: each of net/http's own error answers, in the exact form its server
// writes them, becomes the same status as a problem; anything else (a handler's answer, part of
// a body) goes out untouched.
func TestServerAnswerAsProblem(t *testing.T) {
	t.Parallel()
	const errorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
	for _, tc := range []struct {
		name, written string
		status        int // 0: untouched
		problem       string
	}{
		{"bad request", "HTTP/1.1 400 Bad Request" + errorHeaders + "400 Bad Request", 400, "invalid-request"},
		{"bad request with a reason", "HTTP/1.1 400 Bad Request: missing required Host header" + errorHeaders +
			"400 Bad Request: missing required Host header", 400, "invalid-request"},
		{"headers too large", "HTTP/1.1 431 Request Header Fields Too Large" + errorHeaders + "431 Request Header Fields Too Large", 431, "headers-too-large"},
		{"unsupported transfer coding", "HTTP/1.1 501 Not Implemented" + errorHeaders + "Unsupported transfer encoding", 501, "not-implemented"},
		{"version", "HTTP/1.1 505 HTTP Version Not Supported: unsupported protocol version" + errorHeaders +
			"505 HTTP Version Not Supported: unsupported protocol version", 505, "http-version-not-supported"},
		{"expectation failed", "HTTP/1.1 417 Expectation Failed\r\nConnection: close\r\nContent-Length: 0\r\nDate: Mon, 07 Dec 2026 13:00:00 GMT\r\n\r\n", 417, "expectation-failed"},
		{"a handler's 400", "HTTP/1.1 400 Bad Request\r\nContent-Security-Policy: default-src 'none'\r\nContent-Type: application/problem+json\r\n\r\n{}", 0, ""},
		{"a handler's text/plain 400, headers sorted", "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n400 Bad Request", 0, ""},
		{"the server's form with another body", "HTTP/1.1 400 Bad Request" + errorHeaders + "something else", 0, ""},
		{"the server's form with a 200", "HTTP/1.1 200 OK" + errorHeaders + "200 OK", 0, ""},
		{"a 417 with a body", "HTTP/1.1 417 Expectation Failed\r\nContent-Length: 2\r\n\r\n{}", 0, ""},
		{"a body chunk", `{"items":[]}`, 0, ""},
		{"a WebSocket frame", "\x81\x05hello", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			answer, ok := serverAnswerAsProblem([]byte(tc.written), true)
			if tc.status == 0 {
				if ok {
					t.Fatalf("rewrote %q as %q", tc.written, answer)
				}
				return
			}
			if !ok {
				t.Fatalf("left %q as it was", tc.written)
			}
			resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(answer)), nil)
			if err != nil {
				t.Fatalf("not an HTTP answer: %v: %q", err, answer)
			}
			body, _ := io.ReadAll(resp.Body)
			var p struct {
				Type   string
				Status int
				Detail string
			}
			if err := json.Unmarshal(body, &p); err != nil || resp.StatusCode != tc.status || p.Status != tc.status ||
				p.Type != ProblemBase+tc.problem || resp.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("answer %q (%v)", answer, err)
			}
			if !resp.Close {
				t.Error("the connection does not close after the answer")
			}
			for name, want := range map[string]string{"Cache-Control": "no-store",
				"X-Content-Type-Options": "nosniff", "Strict-Transport-Security": "max-age=31536000; includeSubDomains"} {
				if got := resp.Header.Get(name); got != want {
					t.Errorf("%s %q, want %q", name, got, want)
				}
			}
			if resp.ContentLength != int64(len(body)) || p.Detail == "" || strings.Contains(p.Detail, "Bad Request") {
				t.Errorf("Content-Length %d for %d bytes, detail %q", resp.ContentLength, len(body), p.Detail)
			}
		})
	}
}
