// Package redisconn turns the Redis settings (REDIS_*, read and validated
// by cmd/chatstate) into a rueidis client.
package redisconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// Config is how to reach Redis. Exactly one of URL, ClusterAddrs,
// SentinelAddrs or Host:Port is used, in that order of precedence.
type Config struct {
	URL            string   // REDIS_URL, e.g. redis://:pw@host:6379/0
	Host           string   // REDIS_HOST; zero means 127.0.0.1
	Port           string   // REDIS_PORT; zero means 6379
	Password       string   // REDIS_PASSWORD
	ClusterAddrs   []string // REDIS_CLUSTER_ADDRS, comma separated
	SentinelAddrs  []string // REDIS_SENTINEL_ADDRS, comma separated
	SentinelMaster string   // REDIS_SENTINEL_MASTER
	TLS            bool     // REDIS_TLS=true
	KeyPrefix      string   // CHATSTATE_KEY_PREFIX
}

// Configured reports whether a Redis address was set. When none is, the
// server runs its embedded single-node mode.
func (c Config) Configured() bool {
	return c.URL != "" || c.Host != "" || c.Port != "" || len(c.ClusterAddrs) > 0 || len(c.SentinelAddrs) > 0
}

// Option returns the rueidis options for c.
func (c Config) Option() (rueidis.ClientOption, error) {
	var opt rueidis.ClientOption
	switch {
	case c.URL != "":
		o, err := rueidis.ParseURL(c.URL)
		if err != nil {
			return opt, fmt.Errorf("REDIS_URL: %w", err)
		}
		opt = o
	case len(c.ClusterAddrs) > 0:
		opt.InitAddress = c.ClusterAddrs
	case len(c.SentinelAddrs) > 0:
		opt.InitAddress = c.SentinelAddrs
		opt.Sentinel = rueidis.SentinelOption{MasterSet: c.SentinelMaster, Password: c.Password}
	default:
		host, port := c.Host, c.Port
		if host == "" {
			host = "127.0.0.1"
		}
		if port == "" {
			port = "6379"
		}
		opt.InitAddress = []string{net.JoinHostPort(host, port)}
		// A single address is a standalone server unless it says otherwise.
		opt.ForceSingleClient = true
	}
	if c.Password != "" && opt.Password == "" {
		opt.Password = c.Password
	}
	if c.TLS && opt.TLSConfig == nil {
		opt.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	// Client-side caching is not used; keep the RESP3 tracking handshake off
	// so servers without CLIENT TRACKING work too.
	opt.DisableCache = true
	opt.ConnWriteTimeout = 10 * time.Second
	opt.RetryDelay = retryDelay
	return opt, nil
}

// retryDelay lets rueidis retry a read-only command that failed on a broken
// connection for about 0.6 s (enough for a reconnect or a failover's switch),
// then gives up. rueidis' default retries until ctx ends: a read during an
// outage would take the caller's whole deadline to fail, or never fail
// under a background ctx, instead of answering unavailable at once.
func retryDelay(attempts int, _ rueidis.Completed, _ error) time.Duration {
	if attempts >= maxRetries {
		return -1
	}
	return (10 * time.Millisecond) << attempts
}

// maxRetries of retryDelay: 10+20+40+80+160+320 ms.
const maxRetries = 6

// Open connects to Redis and checks it with PING within timeout, so a
// misconfigured deployment fails at start with the address it tried.
func Open(ctx context.Context, c Config, timeout time.Duration) (rueidis.Client, error) {
	opt, err := c.Option()
	if err != nil {
		return nil, err
	}
	client, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("redis unreachable at %s: %w", strings.Join(opt.InitAddress, ","), err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := client.Do(ctx, client.B().Ping().Build()).Error(); err != nil {
		client.Close()
		return nil, fmt.Errorf("redis unreachable at %s: %w", strings.Join(opt.InitAddress, ","), err)
	}
	return client, nil
}

// Ping is the health check of /redis/health. On a Cluster it also asks a
// node whether the cluster serves every slot: while a failed master's
// replica has not taken over, every node refuses keyed commands
// (CLUSTERDOWN) yet still answers PING, so a PING alone reports healthy
// a Redis that serves nothing.
func Ping(ctx context.Context, client rueidis.Client) error {
	if client.Mode() != rueidis.ClientModeCluster {
		return client.Do(ctx, client.B().Ping().Build()).Error()
	}
	info, err := client.Do(ctx, client.B().ClusterInfo().Build()).ToString()
	if err != nil {
		return err
	}
	if !strings.Contains(info, "cluster_state:ok") {
		return errors.New("redis cluster_state is not ok")
	}
	return nil
}
