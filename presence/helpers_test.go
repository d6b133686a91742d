package presence

import (
	"context"
	"errors"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/redis/rueidis"
)

func TestMain(m *testing.M) { os.Exit(redistest.Run(m)) }

// newClientFunc gives a client and a key prefix unique to t.
type newClientFunc func(t *testing.T) (rueidis.Client, string)

func realRedis(t *testing.T) (rueidis.Client, string) { return redistest.Start(t) }

func ctxT(t *testing.T) context.Context { return redistest.Ctx(t) }

// redisNow is the server clock in ms, the clock every script uses.
func redisNow(t *testing.T, c rueidis.Client) int64 {
	t.Helper()
	v, err := c.Do(context.Background(), c.B().Time().Build()).AsStrSlice()
	if err != nil || len(v) != 2 {
		t.Fatalf("TIME: %v %v", v, err)
	}
	sec, _ := strconv.ParseInt(v[0], 10, 64)
	usec, _ := strconv.ParseInt(v[1], 10, 64)
	return sec*1000 + usec/1000
}

// nextMs polls the server clock until it has moved past the current
// millisecond, so the next write gets a strictly later timestamp.
func nextMs(t *testing.T, c rueidis.Client) int64 {
	t.Helper()
	start := redisNow(t, c)
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if now := redisNow(t, c); now > start {
			return now
		}
	}
	t.Fatal("redis clock did not advance")
	return 0
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not synchronisation
	}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var e *chatstate.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("want *chatstate.Error %q, got %T %v", code, err, err)
	}
}

func must[T any](t *testing.T) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func ok(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func presenceOf(t *testing.T, s *State, id string) chatstate.Presence {
	t.Helper()
	m, err := s.Presence(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return m[id]
}
