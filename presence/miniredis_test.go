package presence

import (
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/redis/rueidis"
)

// miniRedis runs the contract on an in-process miniredis (the future
// zero-setup embedded Redis). One server per test: the contract only uses
// key prefixes for isolation, so sharing would work too.
func miniRedis(t *testing.T) (rueidis.Client, string) {
	m := miniredis.RunT(t)
	m.ClockTTL(true) // as the embedded mode runs it
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{m.Addr()}, DisableCache: true})
	if err != nil {
		t.Fatalf("rueidis on miniredis: %v", err)
	}
	t.Cleanup(c.Close)
	return c, redistest.Prefix(t)
}

func TestStateMiniredis(t *testing.T) { testState(t, miniRedis) }
