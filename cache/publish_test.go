package cache

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/redis/rueidis"
)

func testMessagesPublish(t *testing.T, nc newClientFunc) {
	e := newEnv(t, nc, Config{})
	ch1, ch2 := e.prefix+"ch1", e.prefix+"ch2"
	var (
		mu  sync.Mutex
		got = map[string][]string{}
	)
	sub, release := e.client.Dedicate()
	defer release()
	probed := map[string]bool{}
	sub.SetPubSubHooks(rueidis.PubSubHooks{OnMessage: func(m rueidis.PubSubMessage) {
		mu.Lock()
		defer mu.Unlock()
		if m.Message == "probe" {
			probed[m.Channel] = true
			return
		}
		got[m.Channel] = append(got[m.Channel], m.Message)
	}})
	must(t, sub.Do(e.ctx, sub.B().Subscribe().Channel(ch1, ch2).Build()).Error())
	// Wait until both subscriptions are live: probes arrive.
	eventually(t, 5*time.Second, "subscriptions", func() bool {
		for _, ch := range []string{ch1, ch2} {
			e.do(e.client.B().Publish().Channel(ch).Message("probe").Build())
		}
		mu.Lock()
		defer mu.Unlock()
		return probed[ch1] && probed[ch2]
	})

	// The prefix carries a NUL, as the gateway's exclude envelope does: it
	// must survive the ready record's JSON round trip.
	pub := Publish{Channel: ch1, Prefix: "x\x00<", Suffix: ">"}
	_, err := e.c.SetSeqFloor(e.ctx, "c", 0)
	must(t, err)
	var seqs []int64
	for i := 0; i < 4; i++ {
		r, err := e.c.Reserve(e.ctx, "c", "u", "cm"+itoa(int64(i)))
		must(t, err)
		seqs = append(seqs, r.Seq)
	}
	msg := func(i int) chatstate.Message {
		return chatstate.Message{ID: "m" + itoa(int64(i)), ConversationID: "c", SenderID: "u", Content: "hi", Type: "text",
			ClientMessageID: "cm" + itoa(int64(i)), Seq: seqs[i], CreatedAt: 1000 + int64(i)}
	}
	commit := func(i int) Committed {
		t.Helper()
		c, err := e.c.Commit(e.ctx, msg(i), pub)
		must(t, err)
		return c
	}
	// Committed out of order: nothing above a pending seq is published.
	if c := commit(2); c.Settled != 0 || c.Head != 1 || c.Already || c.Message != msg(2) {
		t.Fatalf("commit 3 of 4 first: %+v", c)
	}
	if c := commit(1); c.Settled != 0 || c.Head != 1 {
		t.Fatalf("commit 2: %+v", c)
	}
	if c := commit(0); c.Settled != 3 || c.Head != 4 {
		t.Fatalf("commit 1 publishes 1..3 and stops at pending 4: %+v", c)
	}
	// A commit again (a resend) publishes nothing and says so.
	if c := commit(1); !c.Already || c.Message != msg(1) || c.Settled != 3 {
		t.Fatalf("second commit of 2: %+v", c)
	}
	// Seq 4 never gets stored: skipping it settles the conversation.
	w, err := e.c.Settle(e.ctx, "c", seqs[3])
	must(t, err)
	if w.Settled != 4 || w.Head != 0 || w.Missing {
		t.Fatalf("after skipping 4: %+v", w)
	}
	// Barrier: one more message after the duplicate.
	r, err := e.c.Reserve(e.ctx, "c", "u", "")
	must(t, err)
	last := chatstate.Message{ID: "m-last", ConversationID: "c", SenderID: "u", Content: "last", Type: "text", Seq: r.Seq, CreatedAt: 2000}
	if c, err := e.c.Commit(e.ctx, last, pub); err != nil || c.Settled != 5 {
		t.Fatalf("commit last: %+v %v", c, err)
	}
	want := []chatstate.Message{msg(0), msg(1), msg(2), last}
	eventually(t, 5*time.Second, "publications", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got[ch1]) >= 4
	})
	// Barrier: a probe on ch2 published after everything above.
	mu.Lock()
	probed[ch2] = false
	mu.Unlock()
	eventually(t, 5*time.Second, "barrier", func() bool {
		e.do(e.client.B().Publish().Channel(ch2).Message("probe").Build())
		mu.Lock()
		defer mu.Unlock()
		return probed[ch2]
	})
	mu.Lock()
	defer mu.Unlock()
	if len(got[ch2]) != 0 {
		t.Fatalf("a channel not named got %q", got[ch2])
	}
	for _, ch := range []string{ch1} {
		if len(got[ch]) != 4 {
			t.Fatalf("%s got %d publications, want 4 (no duplicate)", ch, len(got[ch]))
		}
		for i, p := range got[ch] {
			seq, body, _ := strings.Cut(p, "\x00")
			if seq != itoa(want[i].Seq) {
				t.Fatalf("payload %q does not start with seq %d", p, want[i].Seq)
			}
			body, ok := strings.CutPrefix(body, "x\x00<")
			if !ok || !strings.HasSuffix(body, ">") {
				t.Fatalf("payload %q not wrapped", p)
			}
			var m chatstate.Message
			must(t, json.Unmarshal([]byte(strings.TrimSuffix(body, ">")), &m))
			if m != want[i] {
				t.Fatalf("publication %d on %s = %+v, want %+v (in seq order)", i, ch, m, want[i])
			}
		}
	}
	cached, err := e.c.Messages(e.ctx, "c", 0, 10)
	must(t, err)
	if len(cached) != 4 || cached[3] != last {
		t.Fatalf("cache holds %+v, want the 4 published", cached)
	}
	// The dedupe cache answers a resend of a published message.
	if r, err := e.c.Reserve(e.ctx, "c", "u", "cm2"); err != nil || !r.Duplicate || r.Cached != msg(2) {
		t.Fatalf("reserve a published id: %+v %v", r, err)
	}
}

// testSettleTimeout: a pending seq blocks the ones above it until its
// settle timeout passes; then the window says it may be skipped.
func testSettleTimeout(t *testing.T, nc newClientFunc) {
	e := newEnv(t, nc, Config{SettleTimeout: 200 * time.Millisecond})
	_, err := e.c.SetSeqFloor(e.ctx, "c", 0)
	must(t, err)
	r1, err := e.c.Reserve(e.ctx, "c", "u", "")
	must(t, err)
	w, err := e.c.Settle(e.ctx, "c", 0)
	must(t, err)
	if w.Settled != 0 || w.Head != r1.Seq || w.HeadWait <= 0 || w.HeadWait > 200*time.Millisecond {
		t.Fatalf("fresh reservation: %+v", w)
	}
	eventually(t, 5*time.Second, "head expiry", func() bool {
		w, err := e.c.Settle(e.ctx, "c", 0)
		return err == nil && w.Head == r1.Seq && w.HeadWait == 0
	})
	if w, err := e.c.Settle(e.ctx, "c", 0); err != nil || w.Settled != 0 {
		t.Fatalf("an expired head still holds the window until it is skipped: %+v %v", w, err)
	}
	// A missing counter (Redis lost its data) is reported, not guessed.
	if w, err := e.c.Settle(e.ctx, "other", 0); err != nil || !w.Missing {
		t.Fatalf("no counter: %+v %v", w, err)
	}
	if _, err := e.c.Commit(e.ctx, chatstate.Message{ID: "m", ConversationID: "c", SenderID: "u", Type: "text"}, Publish{}); chatstate.ErrorCode(err) != chatstate.EINVALID {
		t.Fatalf("commit without a seq: %v", err)
	}
}
