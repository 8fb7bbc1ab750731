package chaos

import (
	"bytes"
	"context"
	"io"
	"log"
	"net"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// mailSink is the SMTP server the email consumer sends to (SMTP_ADDR): it counts deliveries
// per Message-ID, which the consumer derives from the event id, so a mail sent twice for one
// event shows (the file mailer would overwrite it).
type mailSink struct {
	srv  *smtp.Server
	l    net.Listener
	done chan struct{}

	mu    sync.Mutex
	count map[string]int // Message-ID without brackets -> deliveries
}

func startMailSink() (*mailSink, error) {
	l, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &mailSink{l: l, done: make(chan struct{}), count: map[string]int{}}
	s.srv = smtp.NewServer(s)
	s.srv.Domain = "localhost"
	s.srv.ReadTimeout, s.srv.WriteTimeout = 30*time.Second, 30*time.Second
	s.srv.ErrorLog = log.New(io.Discard, "", 0)
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(l)
	}()
	return s, nil
}

// Addr is host:port for SMTP_ADDR.
func (s *mailSink) Addr() string { return s.l.Addr().String() }

// Deliveries is how many times each Message-ID arrived.
func (s *mailSink) Deliveries() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.count))
	for k, v := range s.count {
		out[k] = v
	}
	return out
}

func (s *mailSink) Close() {
	_ = s.srv.Close()
	_ = s.l.Close()
	<-s.done
}

func (s *mailSink) record(data []byte) {
	id := "unknown"
	if m, err := mail.ReadMessage(bytes.NewReader(data)); err == nil {
		id = strings.Trim(m.Header.Get("Message-Id"), "<> ")
	}
	s.mu.Lock()
	s.count[id]++
	s.mu.Unlock()
}

// NewSession implements smtp.Backend.
func (s *mailSink) NewSession(*smtp.Conn) (smtp.Session, error) { return sinkSession{s}, nil }

type sinkSession struct{ s *mailSink }

func (sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (sinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (sinkSession) Reset()                               {}
func (sinkSession) Logout() error                        { return nil }

func (x sinkSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.s.record(data)
	return nil
}
