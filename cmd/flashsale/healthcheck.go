package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/flashsale/flashsale/internal/config"
)

// healthcheckCommand probes the API of this container, or with --admin the admin listener of a
// worker or consumer: images without a shell or curl (distroless) use it as their HEALTHCHECK.
// Exit status 0 means healthy.
func healthcheckCommand() *cobra.Command {
	var (
		url     string
		path    string
		admin   bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "GET /healthz of the API at HTTP_ADDR (--admin: of ADMIN_ADDR) on this host; exit 0 if it answers 200, 1 otherwise",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if url == "" {
				base := localURL(os.Getenv("HTTP_ADDR"))
				if admin {
					addr := os.Getenv("ADMIN_ADDR")
					if addr == "" {
						return fmt.Errorf("healthcheck --admin: ADMIN_ADDR is not set")
					}
					base = localURL(addr)
				}
				url = base + path
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("healthcheck: %w", err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("healthcheck: %s answered %s", url, resp.Status)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "ok")
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", "", "URL to probe (default: http://127.0.0.1:<port of HTTP_ADDR>/healthz)")
	cmd.Flags().BoolVar(&admin, "admin", false, "probe the admin listener at ADMIN_ADDR (worker, consumer) instead of the API")
	cmd.Flags().StringVar(&path, "path", "/healthz", "path to probe: /healthz (alive) or /readyz (ready: dependencies and, for the worker, the outbox relay)")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "how long to wait for the answer")
	return cmd
}

// localURL turns a listen address (HTTP_ADDR, e.g. ":8080" or "0.0.0.0:8080") into the base URL
// that reaches it from the same host.
func localURL(addr string) string {
	if addr == "" {
		addr = config.Defaults().HTTPAddr
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
