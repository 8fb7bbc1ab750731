package http

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// NewListener wraps the API's listener so that the answers net/http's server writes by itself
// are problem documents like every other error. The server answers a request it cannot read
// before any handler runs, straight to the connection, in text/plain (net/http's conn.serve):
//
//	HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request
//
// for a malformed request line, a control character in a header, a bad % escape in the target,
// two Content-Lengths, a missing Host ("400 Bad Request: missing required Host header"); 431
// for headers over http.Server.MaxHeaderBytes; 501 for a transfer coding other than chunked;
// 505 for a protocol version it does not serve; and 417, through a response of its own, for an
// Expect other than 100-continue. Each connection's writes are looked at whole: one that is
// exactly such an answer (the server writes each in one call, and nothing else the API writes
// has that form: a handler's answer carries the security headers first, its bodies are JSON,
// with no raw CR or LF, or our own static files) is replaced by the same status as a problem,
// with the security headers. What cannot be caught this way is listed in docs/security.md.
func NewListener(ln net.Listener, hsts bool) net.Listener {
	return problemListener{Listener: ln, hsts: hsts}
}

type problemListener struct {
	net.Listener
	hsts bool
}

func (l problemListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &problemConn{Conn: c, hsts: l.hsts}, nil
}

type problemConn struct {
	net.Conn
	hsts bool
}

func (c *problemConn) Write(p []byte) (int, error) {
	if answer, ok := serverAnswerAsProblem(p, c.hsts); ok {
		if _, err := c.Conn.Write(answer); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// CloseWrite lets the server half-close after a 431, as it does on a bare TCP connection, so
// the client reads the answer before the connection goes.
func (c *problemConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// The parts of net/http's own answers (see NewListener).
const (
	serverAnswerStart   = "HTTP/1.1 "
	serverErrorHeaders  = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
	serverUnsupportedTE = "Unsupported transfer encoding"
	serverExpectFailed  = "HTTP/1.1 417 Expectation Failed\r\n"
)

// serverAnswerAsProblem recognises one of net/http's own error answers and gives it as a
// problem; ok is false for anything else, which goes out as it is.
func serverAnswerAsProblem(p []byte, hsts bool) (answer []byte, ok bool) {
	// Every write of every connection comes here: anything that cannot be such an answer is let
	// through before the copy below.
	if !bytes.HasPrefix(p, []byte(serverAnswerStart)) ||
		(!bytes.HasPrefix(p, []byte(serverExpectFailed)) && !bytes.Contains(p, []byte(serverErrorHeaders))) {
		return nil, false
	}
	s := string(p)
	if strings.HasPrefix(s, serverExpectFailed) && strings.HasSuffix(s, "\r\n\r\n") &&
		strings.Count(s, "\r\n\r\n") == 1 && strings.Contains(s, "\r\nContent-Length: 0\r\n") {
		// No handler of the API answers 417: this is the server refusing the Expect header.
		return problemAnswer(http.StatusExpectationFailed, "only Expect: 100-continue is supported", hsts), true
	}
	status, body, found := strings.Cut(s[len(serverAnswerStart):], serverErrorHeaders)
	if !found || strings.ContainsAny(status, "\r\n") || (body != status && body != serverUnsupportedTE) {
		return nil, false
	}
	code, err := strconv.Atoi(status[:min(3, len(status))])
	if err != nil || code < 400 || code > 599 {
		return nil, false
	}
	// The server's reasons are its own fixed texts ("missing required Host header"), never the
	// request's bytes.
	_, reason, _ := strings.Cut(status, ": ")
	switch {
	case code == http.StatusRequestHeaderFieldsTooLarge:
		reason = fmt.Sprintf("headers may be at most %d bytes", MaxHeaderBytes)
	case body == serverUnsupportedTE:
		reason = "the only transfer coding taken is chunked"
	case reason == "" && code == http.StatusBadRequest:
		reason = "not a valid HTTP/1.1 request: its request line, a header or its framing is malformed"
	}
	return problemAnswer(code, reason, hsts), true
}

// problemAnswer is a whole HTTP/1.1 answer, the connection closing after it (as net/http's did).
func problemAnswer(status int, detail string, hsts bool) []byte {
	p := statusProblem(context.Background(), status, detail) // no request was read: no request id
	body, _ := json.Marshal(p)
	body = append(body, '\n')
	h := http.Header{}
	setSecurityHeaders(h, hsts)
	h.Set("Content-Type", "application/problem+json")
	h.Set("Cache-Control", "no-store")
	h.Set("Connection", "close")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
	_ = h.Write(&b)
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}
