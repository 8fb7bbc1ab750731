package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	neturl "net/url"
	"runtime"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// NewClient builds the client REDIS_URL names, in go-redis's own URL forms (redis:// or, for
// TLS, rediss://):
//
//   - a single node, redis://[user:password@]host:port/db (goredis.ParseURL);
//   - Sentinel when the URL names a master: its host and each addr are sentinels, its user and
//     password the sentinels', the master's own in the username and password parameters,
//     redis://sentinel1:26379/0?master_name=mymaster&addr=sentinel2:26379 (goredis.ParseFailoverURL);
//   - Cluster when it lists more seed nodes with addr (as goredis.NewUniversalClient, two
//     addresses or more make a cluster), redis://seed1:6379?addr=seed2:6379 (goredis.ParseClusterURL).
//
// Replica reads (route_by_latency, route_randomly, replica_only, read_only) are refused: the
// inventory must read what it just wrote. With TLS, Sentinel and Cluster check each server's
// certificate against the host they reach it at, not only the URL's.
func NewClient(url string) (goredis.UniversalClient, error) {
	u, err := neturl.Parse(url)
	if err != nil {
		return nil, fmt.Errorf("redis: parse REDIS_URL: %w", err)
	}
	q := u.Query()
	for _, name := range []string{"route_by_latency", "route_randomly", "replica_only", "read_only"} {
		if q.Has(name) {
			return nil, fmt.Errorf("redis: REDIS_URL: %s is not supported: Flashsale reads from masters only", name)
		}
	}
	switch {
	case q.Has("master_name"):
		opt, err := goredis.ParseFailoverURL(url)
		if err != nil {
			return nil, fmt.Errorf("redis: parse REDIS_URL (Sentinel): %w", err)
		}
		perHostTLS(opt.TLSConfig)
		return goredis.NewFailoverClient(opt), nil
	case q.Has("addr"):
		opt, err := goredis.ParseClusterURL(url)
		if err != nil {
			return nil, fmt.Errorf("redis: parse REDIS_URL (Cluster): %w", err)
		}
		perHostTLS(opt.TLSConfig)
		if !q.Has("pool_size") {
			// go-redis gives each node half a single node's pool, as if the load spread over
			// the masters; a hot sale's purchases all go to the one holding its slot.
			opt.PoolSize = 10 * runtime.GOMAXPROCS(0)
		}
		return goredis.NewClusterClient(opt), nil
	default:
		opt, err := goredis.ParseURL(url)
		if err != nil {
			return nil, fmt.Errorf("redis: parse REDIS_URL: %w", err)
		}
		return goredis.NewClient(opt), nil
	}
}

// perHostTLS leaves the server name to crypto/tls, which takes each connection's host: the
// parsers set the URL's, but a Sentinel's master and a cluster's nodes are other hosts.
func perHostTLS(c *tls.Config) {
	if c != nil {
		c.ServerName = ""
	}
}

// Open builds the client REDIS_URL names (NewClient) and checks it answers.
func Open(ctx context.Context, url string) (goredis.UniversalClient, error) {
	client, err := NewClient(url)
	if err != nil {
		return nil, err
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := client.Ping(pingCtx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("redis: ping: %w", err)
	}
	return client, nil
}

// ForEachMaster calls fn with a client of each master: the cluster's, or the one server (the
// Sentinel group's current master) otherwise. For what each master must answer for itself
// (CONFIG GET, SCAN).
func ForEachMaster(ctx context.Context, rdb goredis.UniversalClient, fn func(context.Context, goredis.UniversalClient) error) error {
	if cc, ok := rdb.(*goredis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
			if err := fn(ctx, c); err != nil {
				return fmt.Errorf("master %s: %w", c.Options().Addr, err)
			}
			return nil
		})
	}
	return fn(ctx, rdb)
}

// CheckAOF fails unless Redis, every master of a cluster, writes every change to its append-only
// file before answering (appendonly yes, appendfsync always): what REDIS_DURABILITY=aof promises.
func CheckAOF(ctx context.Context, rdb goredis.UniversalClient) error {
	return ForEachMaster(ctx, rdb, checkAOF)
}

func checkAOF(ctx context.Context, rdb goredis.UniversalClient) error {
	got := map[string]string{}
	for _, name := range []string{"appendonly", "appendfsync"} {
		v, err := rdb.ConfigGet(ctx, name).Result()
		if err != nil {
			return fmt.Errorf("redis: REDIS_DURABILITY=aof: read %s (CONFIG GET must be allowed): %w", name, err)
		}
		got[name] = v[name]
	}
	if got["appendonly"] != "yes" || got["appendfsync"] != "always" {
		return fmt.Errorf("redis: REDIS_DURABILITY=aof needs appendonly yes and appendfsync always; the server has appendonly %q, appendfsync %q",
			got["appendonly"], got["appendfsync"])
	}
	return nil
}

// Pinger makes a Redis client a readiness check.
type Pinger struct {
	Client goredis.UniversalClient
	// Epoch, if set, must be held too (the roles that sell from Redis): a Redis that lost its
	// data is not ready until the live sales are rebuilt in it ("data lost, rebuilding").
	Epoch *Epoch
}

// Name names the check.
func (Pinger) Name() string { return "redis" }

// Ping checks that Redis answers, every master of a cluster (go-redis would ping one, another
// each time); its error's Reason ("loading", "unreachable") carries no address.
func (p Pinger) Ping(ctx context.Context) error {
	err := ForEachMaster(ctx, p.Client, func(ctx context.Context, c goredis.UniversalClient) error {
		return c.Ping(ctx).Err()
	})
	switch {
	case err == nil && p.Epoch != nil:
		held, err := p.Epoch.Held(ctx)
		switch {
		case err != nil:
			return notReady{reason: "unreachable", err: err}
		case !held:
			return notReady{reason: "data lost, rebuilding", err: errors.New("redis holds no epoch: its live sales are not rebuilt yet")}
		}
		return nil
	case err == nil:
		return nil
	case goredis.HasErrorPrefix(err, "LOADING"):
		return notReady{reason: "loading", err: err}
	default:
		return notReady{reason: "unreachable", err: err}
	}
}

// notReady is a failed readiness check: Reason is fit for anyone to read, Error for the logs.
type notReady struct {
	reason string
	err    error
}

func (e notReady) Error() string  { return e.reason + ": " + e.err.Error() }
func (e notReady) Unwrap() error  { return e.err }
func (e notReady) Reason() string { return e.reason }
