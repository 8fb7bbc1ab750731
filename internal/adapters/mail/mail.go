// Package mail sends Flashsale's mail: over SMTP (SMTP_ADDR) in production, or as .eml files
// in a directory (MAIL_DIR) for local runs. Messages are built with wneessen/go-mail.
package mail

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/flashsale/flashsale/internal/domain"
	"github.com/flashsale/flashsale/internal/ports"
)

func message(from string, m domain.Mail) (*gomail.Msg, error) {
	msg := gomail.NewMsg()
	if err := msg.From(from); err != nil {
		return nil, fmt.Errorf("mail from %q: %w", from, err)
	}
	if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("mail to %q: %v: %w", m.To, err, domain.ErrPermanent)
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	if m.ID != "" {
		// The same event always yields the same Message-ID: receivers can drop a duplicate.
		msg.SetMessageIDWithValue(m.ID + "@flashsale")
	}
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	return msg, nil
}

// FileMailer writes each mail to Dir as <id>.eml: what a local run "sends".
type FileMailer struct {
	Dir  string
	From string
}

var _ ports.Mailer = FileMailer{}

// Send implements ports.Mailer; sending the same mail again rewrites the same file.
func (f FileMailer) Send(_ context.Context, m domain.Mail) error {
	msg, err := message(f.From, m)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(f.Dir, 0o750); err != nil {
		return fmt.Errorf("mail dir: %w", err)
	}
	name := m.ID
	if name == "" {
		name = strconv.FormatInt(time.Now().UnixNano(), 10)
	}
	tmp := filepath.Join(f.Dir, "."+name+".tmp")
	if err := msg.WriteToFile(tmp); err != nil {
		return fmt.Errorf("write mail: %w", err)
	}
	// Rename is atomic: a reader never sees half a mail.
	return os.Rename(tmp, filepath.Join(f.Dir, name+".eml"))
}

// SMTPConfig says where and how to relay mail.
type SMTPConfig struct {
	Addr               string // host:port
	Username, Password string
	From               string
	Timeout            time.Duration
}

// SMTPMailer relays mail to an SMTP server, with STARTTLS when the server offers it.
type SMTPMailer struct {
	cfg  SMTPConfig
	host string
	port int
}

var _ ports.Mailer = (*SMTPMailer)(nil)

// NewSMTPMailer checks the address; it connects per Send.
func NewSMTPMailer(cfg SMTPConfig) (*SMTPMailer, error) {
	host, p, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("SMTP_ADDR %q: %w", cfg.Addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return nil, fmt.Errorf("SMTP_ADDR %q: bad port", cfg.Addr)
	}
	return &SMTPMailer{cfg: cfg, host: host, port: port}, nil
}

// Send implements ports.Mailer.
func (s *SMTPMailer) Send(ctx context.Context, m domain.Mail) error {
	msg, err := message(s.cfg.From, m)
	if err != nil {
		return err
	}
	opts := []gomail.Option{gomail.WithPort(s.port), gomail.WithTimeout(s.cfg.Timeout), gomail.WithTLSPolicy(gomail.TLSOpportunistic)}
	if s.cfg.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(s.cfg.Username), gomail.WithPassword(s.cfg.Password))
	}
	client, err := gomail.NewClient(s.host, opts...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("smtp send to %s: %w", s.cfg.Addr, err)
	}
	return nil
}
