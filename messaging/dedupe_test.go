package messaging

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/cache"
	"github.com/chatstate/chatstate/internal/redistest"
)

// storedCopies counts the conversation's stored messages with clientMessageId cmid.
func (f *fixture) storedCopies(t *testing.T, conv, cmid string) (n, total int) {
	t.Helper()
	all, err := f.store.MessagesAfter(f.ctx, conv, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range all {
		if m.ClientMessageID == cmid {
			n++
		}
	}
	return n, len(all)
}

// publishedSeqs decodes the seqs of publications.
func publishedSeqs(t *testing.T, pubs []string) []int64 {
	t.Helper()
	var out []int64
	for _, p := range pubs {
		var m chatstate.Message
		if err := json.Unmarshal([]byte(p), &m); err != nil {
			t.Fatalf("publication %q: %v", p, err)
		}
		out = append(out, m.Seq)
	}
	return out
}

// A resend while the original is cached is answered from the cache: the
// original, no new seq, nothing stored or published again.
func TestResendWithinTheDedupeWindow(t *testing.T) {
	client, prefix := redistest.Start(t)
	f := setup(t, client, prefix, cache.Config{})
	orig, _ := f.send(t, "c1", "cm1", "hello")
	again, dup := f.send(t, "c1", "cm1", "changed")
	if !dup || again != orig {
		t.Fatalf("resend: %+v dup=%v, want %+v", again, dup, orig)
	}
	if n, _ := f.cache.LastSeq(f.ctx, "c1"); n != 1 {
		t.Fatalf("the resend took a seq: counter %d", n)
	}
	if n, total := f.storedCopies(t, "c1", "cm1"); n != 1 || total != 1 {
		t.Fatalf("stored %d copies, %d messages", n, total)
	}
	if p := publishedSeqs(t, f.published(t)); len(p) != 1 || p[0] != 1 {
		t.Fatalf("published seqs %v, want [1]", p)
	}
}

// A resend whose original left the cache (and the dedupe index) goes to the
// store: it refuses a second copy, the send answers the stored original and
// its own reserved seq becomes a gap; nothing is published again.
func TestResendAfterTheDedupeWindow(t *testing.T) {
	client, prefix := redistest.Start(t)
	f := setup(t, client, prefix, cache.Config{MessageLimit: 5})
	orig, _ := f.send(t, "c1", "cm0", "first")
	for i := 1; i <= 10; i++ {
		f.send(t, "c1", fmt.Sprint("cm", i), "x")
	}
	if p := f.published(t); len(p) != 11 {
		t.Fatalf("%d publications before the resend, want 11", len(p))
	}
	again, dup := f.send(t, "c1", "cm0", "first")
	if !dup || again != orig {
		t.Fatalf("late resend: %+v dup=%v, want %+v", again, dup, orig)
	}
	if n, total := f.storedCopies(t, "c1", "cm0"); n != 1 || total != 11 {
		t.Fatalf("stored %d copies of cm0, %d messages; want 1 and 11", n, total)
	}
	if p := f.published(t); len(p) != 0 {
		t.Fatalf("the late resend published %v", publishedSeqs(t, p))
	}
	// The late resend cost one seq (12), skipped at once.
	next, _ := f.send(t, "c1", "cm-next", "y")
	if next.Seq != 13 {
		t.Fatalf("next seq %d, want 13 (12 skipped by the late resend)", next.Seq)
	}
	if got, err := f.svc.Sync(f.ctx, "c1", 11, 100); err != nil || len(got) != 1 || got[0] != next {
		t.Fatalf("sync past the gap: %+v %v", got, err)
	}
	// A second late resend is answered the same way.
	if again, dup := f.send(t, "c1", "cm0", "first"); !dup || again != orig {
		t.Fatalf("second late resend: %+v dup=%v", again, dup)
	}
	if n, _ := f.storedCopies(t, "c1", "cm0"); n != 1 {
		t.Fatalf("stored %d copies of cm0", n)
	}
}

// After Redis lost everything (counter, cache, dedupe index), a resend is
// answered from the store with the original, stored once.
func TestResendAfterRedisLostEverything(t *testing.T) {
	srv := redistest.StartServer(t)
	client := srv.Client(t)
	f := setup(t, client, redistest.Prefix(t), cache.Config{})
	orig, _ := f.send(t, "c1", "cm1", "hello")
	f.send(t, "c1", "cm2", "world")
	srv.Restart(t)
	var sent Sent
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		sent, err = f.svc.Send(f.ctx, chatstate.Message{ConversationID: "c1", SenderID: "alice", ClientMessageID: "cm1", Content: "hello"}, cache.Publish{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // waiting for the client to reconnect
	}
	if !sent.Duplicate || sent.Message != orig {
		t.Fatalf("resend after data loss: %+v, want %+v", sent, orig)
	}
	if n, total := f.storedCopies(t, "c1", "cm1"); n != 1 || total != 2 {
		t.Fatalf("stored %d copies of cm1, %d messages; want 1 and 2", n, total)
	}
	// Now cached again: the next resend is a cache hit, no seq taken.
	before, _ := f.cache.LastSeq(f.ctx, "c1")
	if again, dup := f.send(t, "c1", "cm1", "hello"); !dup || again != orig {
		t.Fatalf("second resend: %+v dup=%v", again, dup)
	}
	if after, _ := f.cache.LastSeq(f.ctx, "c1"); after != before {
		t.Fatalf("the cached resend took a seq: %d -> %d", before, after)
	}
}
