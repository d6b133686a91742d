package cache

import (
	"sync"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/redistest"
)

// TestSeqRecoveryAfterDataLoss shows why LastSeq/SetSeqFloor exist: after
// Redis loses its data the counter restarts, unless the floor is restored.
func TestSeqRecoveryAfterDataLoss(t *testing.T) {
	srv := redistest.StartServer(t)
	client := srv.Client(t)
	ctx := redistest.Ctx(t)
	c := New(client, Config{})
	for i := 0; i < 3; i++ {
		_, _, err := c.AddMessage(ctx, chatstate.Message{ConversationID: "c", SenderID: "u", Content: "x"})
		must(t, err)
	}
	last, err := c.LastSeq(ctx, "c")
	must(t, err)
	if last != 3 {
		t.Fatalf("LastSeq %d", last)
	}
	srv.Restart(t)
	// rueidis reconnects; poll until the restarted server answers.
	eventually(t, 10*time.Second, "client to reconnect", func() bool {
		return client.Do(ctx, client.B().Ping().Build()).Error() == nil
	})
	if n, err := c.LastSeq(ctx, "c"); err != nil || n != 0 {
		t.Fatalf("after data loss LastSeq = %d, %v", n, err)
	}
	// Scripts are gone too (NOSCRIPT -> EVAL fallback).
	if _, err := c.SetSeqFloor(ctx, "c", last); err != nil {
		t.Fatal(err)
	}
	m, _, err := c.AddMessage(ctx, chatstate.Message{ConversationID: "c", SenderID: "u", Content: "y"})
	must(t, err)
	if m.Seq != last+1 {
		t.Fatalf("seq after recovery %d, want %d", m.Seq, last+1)
	}
}

// testConcurrentResend: many concurrent sends of one client message id store
// exactly one message.
func testConcurrentResend(t *testing.T, nc newClientFunc) {
	e := newEnv(t, nc, Config{})
	const n = 30
	var wg sync.WaitGroup
	got := make([]chatstate.Message, n)
	dups := make([]bool, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			got[i], dups[i], errs[i] = e.c.AddMessage(e.ctx, chatstate.Message{ConversationID: "c", SenderID: "u", Content: "once", ClientMessageID: "same"})
		}(i)
	}
	wg.Wait()
	fresh := 0
	for i := 0; i < n; i++ {
		must(t, errs[i])
		if !dups[i] {
			fresh++
		}
		if got[i] != got[0] {
			t.Fatalf("different messages returned: %+v vs %+v", got[i], got[0])
		}
	}
	if fresh != 1 || got[0].Seq != 1 {
		t.Fatalf("%d non-duplicate sends, seq %d", fresh, got[0].Seq)
	}
	if n := e.int(e.client.B().Zcard().Key(e.c.keys.Messages("c")).Build()); n != 1 {
		t.Fatalf("zcard %d", n)
	}
}

// TestFriendsLarge stores MaxFriends ids, more than one Lua unpack chunk.
func TestFriendsLarge(t *testing.T) {
	e := newEnv(t, realRedis, Config{})
	list := friends(e.c.cfg.MaxFriends)
	must(t, e.c.CacheFriendList(e.ctx, "u", list))
	f, found, err := e.c.FriendList(e.ctx, "u")
	must(t, err)
	if !found || len(f) != len(list) {
		t.Fatalf("found=%v len %d", found, len(f))
	}
	wantCode(t, e.c.CacheFriendList(e.ctx, "u", friends(e.c.cfg.MaxFriends+1)), chatstate.ETOOLARGE)
}
