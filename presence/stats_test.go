package presence

import (
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/keys"
)

// Nodes lists live instances with the connection count of their last
// heartbeat; an instance that left is not listed and its info is gone.
func testNodes(t *testing.T, newClient newClientFunc) {
	c, prefix := newClient(t)
	ctx := ctxT(t)
	conns := 7
	a := newState(t, c, prefix, Config{NodeID: "a", Connections: func() int { return conns }})
	b := newState(t, c, prefix, Config{NodeID: "b"})
	nodes, err := a.Nodes(ctx)
	ok(t, err)
	got := map[string]int{}
	for _, n := range nodes {
		got[n.Instance] = n.Connections
		if n.HeartbeatAgeMs < 0 || n.HeartbeatAgeMs > 60_000 {
			t.Errorf("%s heartbeat age %d ms", n.Instance, n.HeartbeatAgeMs)
		}
	}
	if len(got) != 2 || got[a.Instance()] != 7 || got[b.Instance()] != 0 {
		t.Fatalf("nodes %v, want %s=7 and %s=0", nodes, a.Instance(), b.Instance())
	}
	conns = 3
	ok(t, a.Heartbeat(ctx))
	ok(t, b.Leave(ctx))
	nodes, err = b.Nodes(ctx)
	ok(t, err)
	if len(nodes) != 1 || nodes[0].Instance != a.Instance() || nodes[0].Connections != 3 {
		t.Fatalf("after b left and a beat with 3: %+v", nodes)
	}
	k := keys.New(prefix)
	// Its connection count is gone; the field keeps the "left" tombstone
	// until the purge age.
	if v, err := c.Do(ctx, c.B().Hget().Key(k.NodeInfo()).Field(b.Instance()).Build()).ToString(); err != nil || v != "left" {
		t.Fatalf("b's node info after it left: %q %v", v, err)
	}
}

// SweepTyping removes the expired entry of a set that stays alive through
// another typer; TypingEntries only counts. OnlineCount counts connected
// users, invisible ones included.
func testTypingSweepAndCounts(t *testing.T, newClient newClientFunc) {
	c, prefix := newClient(t)
	ctx := ctxT(t)
	short := newState(t, c, prefix, Config{TypingTTL: 100 * time.Millisecond})
	long := newState(t, c, prefix, Config{TypingTTL: time.Minute})
	ok(t, short.SetUserTyping(ctx, "quick", "c1"))
	ok(t, long.SetUserTyping(ctx, "slow", "c1"))
	ok(t, long.SetUserTyping(ctx, "other", "c2"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := long.TypingEntries(ctx, 0)
		ok(t, err)
		if n.Expired == 1 {
			if n.Live != 2 || n.Conversations != 2 || !n.Complete {
				t.Fatalf("entries %+v, want 2 live in 2 conversations", n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the short typing entry never expired: %+v", n)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	swept, err := long.SweepTyping(ctx)
	ok(t, err)
	if swept.Expired != 1 || swept.Live != 2 {
		t.Fatalf("sweep %+v, want 1 removed, 2 live", swept)
	}
	if n, err := c.Do(ctx, c.B().Zcard().Key(keys.New(prefix).Typing("c1")).Build()).AsInt64(); err != nil || n != 1 {
		t.Fatalf("c1 typing set after the sweep: %d %v", n, err)
	}
	if again, err := long.SweepTyping(ctx); err != nil || again.Expired != 0 {
		t.Fatalf("second sweep %+v %v, want nothing removed", again, err)
	}

	_, err = long.SetUserOnline(ctx, "u1", "d", "s1")
	ok(t, err)
	_, err = long.SetUserOnline(ctx, "u2", "d", "s2")
	ok(t, err)
	_, err = long.UpdateUserStatus(ctx, "u2", chatstate.StatusInvisible)
	ok(t, err)
	if n, err := long.OnlineCount(ctx); err != nil || n != 2 {
		t.Fatalf("online count %d %v, want 2", n, err)
	}
}
