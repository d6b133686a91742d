package cache

import (
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/redis/rueidis"
)

// miniRedis starts an in-process miniredis whose TTLs follow the wall clock
// (ClockTTL), exactly as the embedded zero-setup mode runs it.
func miniRedis(t *testing.T) (rueidis.Client, string) {
	t.Helper()
	m := miniredis.RunT(t)
	m.ClockTTL(true)
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{m.Addr()}, DisableCache: true})
	if err != nil {
		t.Fatalf("rueidis on miniredis: %v", err)
	}
	t.Cleanup(c.Close)
	return c, redistest.Prefix(t)
}

func TestCacheMiniredis(t *testing.T) { testCache(t, miniRedis) }
