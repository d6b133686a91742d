package redisconn

import (
	"fmt"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/rueidis"
)

// Embedded is an in-process Redis-protocol server (miniredis) for the
// zero-setup, single-node development mode. TTLs follow the wall clock.
// It has no SSUBSCRIBE, CLIENT TRACKING or INFO memory, so callers keep
// those paths off; scripts, Pub/Sub and TIME work.
type Embedded struct {
	Server *miniredis.Miniredis
	Client rueidis.Client
}

// StartEmbedded starts the embedded server on a free loopback port.
func StartEmbedded() (*Embedded, error) {
	m := miniredis.NewMiniRedis()
	m.ClockTTL(true)
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("embedded redis: %w", err)
	}
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{m.Addr()}, DisableCache: true, ForceSingleClient: true})
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("embedded redis: %w", err)
	}
	return &Embedded{Server: m, Client: c}, nil
}

// Close stops the client and the server; the data is gone.
func (e *Embedded) Close() {
	e.Client.Close()
	e.Server.Close()
}
