package mail_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log"
	"mime"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/flashsale/flashsale/internal/adapters/mail"
	"github.com/flashsale/flashsale/internal/domain"
)

var ctx = context.Background()

// testMail has a non-ASCII subject (encoded on the wire) and a line long enough to be wrapped
// by quoted-printable: what arrives must still be exactly this.
func testMail(id string) domain.Mail {
	return domain.Mail{
		ID:      id,
		To:      "alice@example.com",
		Subject: "Your order for Café Drop – 2030 is confirmed",
		Text: "Hello,\n\nyour order is confirmed.\n\n  Sale:     Café Drop – 2030\n  Quantity: 3 units at 19.99 EUR\n" +
			"  Total:    59.97 EUR\n  Order:    " + id + "\n\nThank you for shopping with us; this line is long enough to be wrapped on the wire.\n",
	}
}

// parsed is a received mail, decoded.
type parsed struct {
	header netmail.Header
	from   *netmail.Address
	to     []*netmail.Address
	sub    string
	body   string
}

// parseMail reads a message with net/mail and decodes its subject and text body.
func parseMail(t *testing.T, r io.Reader) parsed {
	t.Helper()
	msg, err := netmail.ReadMessage(r)
	if err != nil {
		t.Fatalf("net/mail cannot read the message: %v", err)
	}
	h := msg.Header
	var p parsed
	p.header = h
	if p.from, err = netmail.ParseAddress(h.Get("From")); err != nil {
		t.Fatalf("From %q: %v", h.Get("From"), err)
	}
	if p.to, err = h.AddressList("To"); err != nil {
		t.Fatalf("To %q: %v", h.Get("To"), err)
	}
	if p.sub, err = new(mime.WordDecoder).DecodeHeader(h.Get("Subject")); err != nil {
		t.Fatalf("Subject %q: %v", h.Get("Subject"), err)
	}
	media, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || media != "text/plain" || !strings.EqualFold(params["charset"], "utf-8") {
		t.Fatalf("Content-Type %q (%v), want text/plain; charset=UTF-8", h.Get("Content-Type"), err)
	}
	body := msg.Body
	switch cte := strings.ToLower(h.Get("Content-Transfer-Encoding")); cte {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "", "7bit", "8bit":
	default:
		t.Fatalf("unexpected Content-Transfer-Encoding %q", cte)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		t.Fatalf("body: %v", err)
	}
	p.body = strings.ReplaceAll(string(b), "\r\n", "\n")
	if _, err := h.Date(); err != nil {
		t.Fatalf("Date %q: %v", h.Get("Date"), err)
	}
	return p
}

func checkMail(t *testing.T, p parsed, want domain.Mail, fromName, fromAddr string) {
	t.Helper()
	if p.from.Address != fromAddr || p.from.Name != fromName {
		t.Errorf("From = %q <%s>, want %q <%s>", p.from.Name, p.from.Address, fromName, fromAddr)
	}
	if len(p.to) != 1 || p.to[0].Address != want.To {
		t.Errorf("To = %v, want %s", p.to, want.To)
	}
	if p.sub != want.Subject {
		t.Errorf("Subject = %q, want %q", p.sub, want.Subject)
	}
	if got := p.header.Get("Message-Id"); got != "<"+want.ID+"@flashsale>" {
		t.Errorf("Message-Id = %q, want <%s@flashsale>", got, want.ID)
	}
	if p.body != want.Text {
		t.Errorf("body = %q, want %q", p.body, want.Text)
	}
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestFileMailerWritesParsableEML(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "outbox", "mail") // created on first use
	m := mail.FileMailer{Dir: dir, From: "Flashsale <shop@example.com>"}
	want := testMail("3f0e9d7c-5b1a-4c1e-9a0b-0c6f1e2d3a4b")
	if err := m.Send(ctx, want); err != nil {
		t.Fatalf("Send: %v", err)
	}
	f, err := os.Open(filepath.Join(dir, want.ID+".eml"))
	if err != nil {
		t.Fatalf("no %s.eml: %v", want.ID, err)
	}
	defer f.Close()
	checkMail(t, parseMail(t, f), want, "Flashsale", "shop@example.com")

	// The same mail again (a redelivered event) rewrites the one file; no temporary file is left.
	if err := m.Send(ctx, want); err != nil {
		t.Fatalf("second Send: %v", err)
	}
	if names := dirNames(t, dir); len(names) != 1 || names[0] != want.ID+".eml" {
		t.Fatalf("mail dir holds %v, want only %s.eml", names, want.ID)
	}
	// Another mail is another file.
	other := testMail("another-event")
	if err := m.Send(ctx, other); err != nil {
		t.Fatalf("Send(other): %v", err)
	}
	if names := dirNames(t, dir); len(names) != 2 {
		t.Fatalf("mail dir holds %v, want two mails", names)
	}
}

func TestFileMailerRefusesInvalidRecipient(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m := mail.FileMailer{Dir: dir, From: "shop@example.com"}
	for _, to := range []string{"not an address", "", "alice@"} {
		bad := testMail("bad-recipient")
		bad.To = to
		if err := m.Send(ctx, bad); !errors.Is(err, domain.ErrPermanent) {
			t.Fatalf("Send(to %q) = %v, want an error wrapping ErrPermanent", to, err)
		}
	}
	if names := dirNames(t, dir); len(names) != 0 {
		t.Fatalf("refused mail left files %v", names)
	}
}

// ---------------------------------------------------------------------------------------------
// SMTP

// envelope is one mail as the server received it.
type envelope struct {
	From string
	To   []string
	Data []byte
}

// smtpBackend records what clients deliver; rejectRcpt makes it refuse every recipient.
type smtpBackend struct {
	rejectRcpt bool

	mu        sync.Mutex
	delivered []envelope
}

func (b *smtpBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return &smtpSession{b: b}, nil }

func (b *smtpBackend) received() []envelope {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]envelope(nil), b.delivered...)
}

type smtpSession struct {
	b   *smtpBackend
	env envelope
}

func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	s.env = envelope{From: from}
	return nil
}

func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.b.rejectRcpt {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	}
	s.env.To = append(s.env.To, to)
	return nil
}

func (s *smtpSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.env.Data = data
	s.b.mu.Lock()
	s.b.delivered = append(s.b.delivered, s.env)
	s.b.mu.Unlock()
	return nil
}

func (s *smtpSession) Reset()        { s.env = envelope{} }
func (s *smtpSession) Logout() error { return nil }

// startSMTP runs a plain SMTP server on a free local port for the test.
func startSMTP(t *testing.T, be *smtpBackend) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := smtp.NewServer(be)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		_ = l.Close() // Close misses a listener Serve has not registered yet
		<-done
	})
	return l.Addr().String()
}

func newSMTPMailer(t *testing.T, addr string) *mail.SMTPMailer {
	t.Helper()
	m, err := mail.NewSMTPMailer(mail.SMTPConfig{Addr: addr, From: "orders@flashsale.example", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("NewSMTPMailer(%s): %v", addr, err)
	}
	return m
}

func TestSMTPMailerDelivers(t *testing.T) {
	t.Parallel()
	be := &smtpBackend{}
	m := newSMTPMailer(t, startSMTP(t, be))
	want := testMail("7d2c1f0e-8a9b-4c3d-b2e1-f0a9b8c7d6e5")
	if err := m.Send(ctx, want); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := be.received()
	if len(got) != 1 {
		t.Fatalf("server received %d mails, want 1", len(got))
	}
	env := got[0]
	if env.From != "orders@flashsale.example" || len(env.To) != 1 || env.To[0] != want.To {
		t.Fatalf("envelope from %q to %v, want orders@flashsale.example to [%s]", env.From, env.To, want.To)
	}
	checkMail(t, parseMail(t, bytes.NewReader(env.Data)), want, "", "orders@flashsale.example")

	// One connection per Send: a second mail arrives as well.
	if err := m.Send(ctx, testMail("second")); err != nil {
		t.Fatalf("second Send: %v", err)
	}
	if n := len(be.received()); n != 2 {
		t.Fatalf("server received %d mails, want 2", n)
	}
}

func TestSMTPMailerRecipientRejected(t *testing.T) {
	t.Parallel()
	be := &smtpBackend{rejectRcpt: true}
	m := newSMTPMailer(t, startSMTP(t, be))
	err := m.Send(ctx, testMail("rejected"))
	if err == nil {
		t.Fatal("Send succeeded although the server rejected the recipient")
	}
	if !strings.Contains(err.Error(), "550") {
		t.Errorf("error %q does not carry the server's 550 reply", err)
	}
	if got := be.received(); len(got) != 0 {
		t.Fatalf("server received %d mails, want none", len(got))
	}
}

func TestSMTPMailerUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // nothing listens there any more
	m, err := mail.NewSMTPMailer(mail.SMTPConfig{Addr: addr, From: "orders@flashsale.example", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(ctx, testMail("unreachable")); err == nil {
		t.Fatal("Send to a closed port succeeded")
	}
}

func TestSMTPMailerInvalidInput(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"localhost", "localhost:smtp", ""} {
		if _, err := mail.NewSMTPMailer(mail.SMTPConfig{Addr: addr}); err == nil {
			t.Errorf("NewSMTPMailer(%q) accepted a bad address", addr)
		}
	}
	// An invalid recipient is refused before connecting: permanent, and no server is needed.
	be := &smtpBackend{}
	m := newSMTPMailer(t, startSMTP(t, be))
	bad := testMail("bad")
	bad.To = "not an address"
	if err := m.Send(ctx, bad); !errors.Is(err, domain.ErrPermanent) {
		t.Fatalf("Send(invalid recipient) = %v, want an error wrapping ErrPermanent", err)
	}
	if n := len(be.received()); n != 0 {
		t.Fatalf("server received %d mails, want none", n)
	}
}
