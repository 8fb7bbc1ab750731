package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"
)

// client talks to the API nodes of one system with a pool sized for the load.
type client struct {
	bases []string
	http  *http.Client
}

func newClient(bases []string, conns int) *client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     5 * time.Minute,
		DisableCompression:  true,
	}
	return &client{bases: bases, http: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

type call struct {
	method, path, token, ip, idemKey string
	body                             any
	// node is the API node it goes to (an index into the client's bases; 0: the first).
	node int
}

type answer struct {
	status int
	body   []byte
	header http.Header
}

func (c *client) do(ctx context.Context, cl call) (answer, error) {
	var body io.Reader
	if cl.body != nil {
		raw, err := json.Marshal(cl.body)
		if err != nil {
			return answer{}, err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, c.bases[cl.node%len(c.bases)]+cl.path, body)
	if err != nil {
		return answer{}, err
	}
	if cl.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if cl.token != "" {
		req.Header.Set("Authorization", "Bearer "+cl.token)
	}
	if cl.ip != "" {
		req.Header.Set("X-Forwarded-For", cl.ip)
	}
	if cl.idemKey != "" {
		req.Header.Set("Idempotency-Key", cl.idemKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, body: raw, header: resp.Header}, err
}

// json calls and decodes a 2xx answer into out.
func (c *client) json(ctx context.Context, cl call, out any) error {
	a, err := c.do(ctx, cl)
	if err != nil {
		return err
	}
	if a.status/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", cl.method, cl.path, a.status, a.body)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(a.body, out)
}

// warm opens up to n connections, spread over the nodes, by sending n concurrent health checks.
func (c *client) warm(ctx context.Context, n int) {
	done := make(chan struct{}, n)
	for i := range n {
		go func() {
			_, _ = c.do(ctx, call{method: http.MethodGet, path: "/healthz", node: i})
			done <- struct{}{}
		}()
	}
	for range n {
		<-done
	}
}
