package redis

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	goredis "github.com/redis/go-redis/v9"

	"github.com/flashsale/flashsale/internal/domain"
)

// errUnavailable is what a caller is told when Redis cannot answer now.
var errUnavailable = domain.ErrUnavailable.WithDetail("the data store is saturated or failing over; retry shortly (a purchase: with the same Idempotency-Key)")

// unavailable joins domain.ErrUnavailable to err when err says Redis cannot answer now (see
// transient); other errors (a script's bug, a reply it cannot decode), and one already
// unavailable (a store method calling another), are returned as they are.
func unavailable(err error) error {
	if err == nil || errors.Is(err, domain.ErrUnavailable) || !transient(err) {
		return err
	}
	return errors.Join(errUnavailable, err)
}

// transientReplies are the error replies of a Redis that will answer again soon: loading its
// data, a cluster without a master for a slot, mid-resharding or mid-failover (a slot that moved
// under a pipeline), a replica not (or no longer) a master, a busy script.
var transientReplies = []string{"LOADING", "CLUSTERDOWN", "TRYAGAIN", "MOVED", "ASK", "MASTERDOWN", "READONLY",
	"NOREPLICAS", "BUSY"}

// transient reports whether err is Redis being saturated (no pooled connection within the pool
// timeout), unreachable (refused, reset, closed, timed out) or failing over.
func transient(err error) bool {
	var ne net.Error
	switch {
	case errors.Is(err, goredis.ErrPoolTimeout), errors.Is(err, goredis.ErrPoolExhausted),
		errors.Is(err, goredis.ErrClosed), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.As(err, &ne):
		return true
	}
	var re goredis.Error
	if errors.As(err, &re) {
		msg := re.Error()
		for _, prefix := range transientReplies {
			if strings.HasPrefix(msg, prefix) {
				return true
			}
		}
	}
	return false
}
