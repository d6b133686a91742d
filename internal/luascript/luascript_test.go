package luascript

import (
	"context"
	"os"
	"testing"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/redis/rueidis"
)

func TestMain(m *testing.M) { os.Exit(redistest.Run(m)) }

func TestErrMapsCodedReplies(t *testing.T) {
	c, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	s := New("test", `if ARGV[1] == "coded" then return redis.error_reply("not_found no such thing") end
return redis.call("SET", KEYS[1], "v")`)
	err := Err(s.Exec(ctx, c, []string{prefix + "k"}, []string{"coded"}).Error())
	if chatstate.ErrorCode(err) != chatstate.ENOTFOUND || chatstate.ErrorMessage(err) != "no such thing" {
		t.Fatalf("got %v", err)
	}
	if err := Err(s.Exec(ctx, c, []string{prefix + "k"}, []string{"plain"}).Error()); err != nil {
		t.Fatal(err)
	}
	// A Lua runtime error is not a domain error.
	bad := New("bad", `return redis.call("NOSUCHCOMMAND")`)
	if err := Err(bad.Exec(ctx, c, nil, nil).Error()); err == nil || chatstate.ErrorCode(err) != chatstate.EINTERNAL {
		t.Fatalf("want internal error, got %v", err)
	}
}

// Pipeline runs scripts and plain commands in one DoMulti and falls back to
// EVAL for scripts the server does not know.
func TestPipelineFallsBackToEval(t *testing.T) {
	c, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	incr := New("incr", `return redis.call("INCRBY", KEYS[1], ARGV[1])`)
	if err := c.Do(ctx, c.B().ScriptFlush().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	res := Pipeline(ctx, c, []Call{{incr, []string{prefix + "n"}, []string{"2"}}, {incr, []string{prefix + "n"}, []string{"3"}}},
		c.B().Get().Key(prefix+"n").Build())
	if len(res) != 3 {
		t.Fatalf("%d results", len(res))
	}
	a, _ := res[0].AsInt64()
	b, _ := res[1].AsInt64()
	if a+b != 7 || (a != 2 && a != 5) {
		t.Fatalf("script results %d, %d", a, b)
	}
	// The GET ran in the first round trip, before the EVAL retries.
	if v, err := res[2].ToString(); !rueidis.IsRedisNil(err) && v != "" && v != "5" {
		t.Fatalf("plain command result %q %v", v, err)
	}
	if got := Sources(incr); got["incr"] != incr.Src || len(incr.SHA) != 40 {
		t.Fatalf("sources %v sha %q", got, incr.SHA)
	}
}

// Redis down, or up but not serving (a failover's READONLY, LOADING after a
// restart), is a retryable outage for clients, never internal.
func TestErrMapsOutages(t *testing.T) {
	srv := redistest.StartServer(t)
	c := srv.Client(t)
	prefix := redistest.Prefix(t)
	ctx := redistest.Ctx(t)
	for _, reply := range []string{"READONLY You can't write against a read only replica.", "LOADING Redis is loading the dataset in memory", "MASTERDOWN Link with MASTER is down"} {
		s := New("reply", `return redis.error_reply(ARGV[1])`)
		err := Err(s.Exec(ctx, c, []string{prefix + "k"}, []string{reply}).Error())
		if p := chatstate.Payload(err); p.Code != chatstate.EUNAVAILABLE || p.RetryAfterMs <= 0 {
			t.Errorf("%s: %+v", reply, p)
		}
	}
	// Already coded (a store outage passing through): kept as it is.
	store := chatstate.Unavailable("the message store", context.DeadlineExceeded)
	if got := Err(store); got != store {
		t.Errorf("coded error changed: %v", got)
	}
	srv.Stop()
	s := New("set", `return redis.call("SET", KEYS[1], "v")`)
	err := Err(s.Exec(ctx, c, []string{prefix + "k"}, nil).Error())
	if p := chatstate.Payload(err); p.Code != chatstate.EUNAVAILABLE || p.RetryAfterMs <= 0 {
		t.Fatalf("redis stopped: %v -> %+v", err, p)
	}
}
