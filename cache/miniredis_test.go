package cache

import (
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/redis/rueidis"
)

// miniRedis starts an in-process miniredis whose TTLs follow the wall clock
// (miniredis only expires keys on FastForward), as the embedded mode will.
func miniRedis(t *testing.T) (rueidis.Client, string) {
	t.Helper()
	m := miniredis.RunT(t)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				m.FastForward(now.Sub(last))
				last = now
			}
		}
	}()
	t.Cleanup(func() { close(done); <-stopped })
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{m.Addr()}, DisableCache: true})
	if err != nil {
		t.Fatalf("rueidis on miniredis: %v", err)
	}
	t.Cleanup(c.Close)
	return c, redistest.Prefix(t)
}

// TestCacheMiniredis runs the same contract on miniredis.
func TestCacheMiniredis(t *testing.T) { testCache(t, miniRedis) }
