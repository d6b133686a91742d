package cache

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/redis/rueidis"
)

func TestMain(m *testing.M) { os.Exit(redistest.Run(m)) }

// newClientFunc returns a client and a key prefix unique to t.
type newClientFunc func(t *testing.T) (rueidis.Client, string)

func realRedis(t *testing.T) (rueidis.Client, string) { return redistest.Start(t) }

// TestCacheRedis runs the contract against a real redis-server.
func TestCacheRedis(t *testing.T) { testCache(t, realRedis) }

// env is one subtest's cache with its raw client for inspecting keys.
type env struct {
	t      *testing.T
	ctx    context.Context
	client rueidis.Client
	prefix string
	c      *Cache
}

func newEnv(t *testing.T, newClient newClientFunc, cfg Config) *env {
	t.Helper()
	client, prefix := newClient(t)
	cfg.KeyPrefix = prefix
	return &env{t: t, ctx: redistest.Ctx(t), client: client, prefix: prefix, c: New(client, cfg)}
}

func (e *env) do(cmd rueidis.Completed) rueidis.RedisResult {
	return e.client.Do(e.ctx, cmd)
}

func (e *env) int(cmd rueidis.Completed) int64 {
	e.t.Helper()
	n, err := e.do(cmd).AsInt64()
	if err != nil {
		e.t.Fatalf("%v: %v", cmd.Commands(), err)
	}
	return n
}

func (e *env) pttl(key string) int64 { return e.int(e.client.B().Pttl().Key(key).Build()) }

// serverNow is Redis' clock in ms, the clock the scripts use.
func (e *env) serverNow() int64 {
	e.t.Helper()
	v, err := e.do(e.client.B().Time().Build()).AsStrSlice()
	if err != nil || len(v) != 2 {
		e.t.Fatalf("TIME: %v %v", v, err)
	}
	s, _ := strconv.ParseInt(v[0], 10, 64)
	us, _ := strconv.ParseInt(v[1], 10, 64)
	return s*1000 + us/1000
}

// eventually polls cond every 20ms until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond) // poll interval, bounded by the deadline
	}
}

// waitServerPast polls Redis' clock until it is past ms.
func (e *env) waitServerPast(ms int64) {
	e.t.Helper()
	eventually(e.t, 10*time.Second, "redis time to pass "+strconv.FormatInt(ms, 10), func() bool { return e.serverNow() > ms })
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if chatstate.ErrorCode(err) != code {
		t.Fatalf("want error code %q, got %v", code, err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
