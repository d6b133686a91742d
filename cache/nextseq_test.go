package cache

import (
	"testing"

	"github.com/chatstate/chatstate"
)

func testNextSeq(t *testing.T, nc newClientFunc) {
	e := newEnv(t, nc, Config{})
	if _, ok, err := e.c.NextSeq(e.ctx, "c"); err != nil || ok {
		t.Fatalf("missing counter: ok=%v err=%v", ok, err)
	}
	// Restoring a floor of 0 creates the counter (a new conversation).
	if n, err := e.c.SetSeqFloor(e.ctx, "c", 0); err != nil || n != 0 {
		t.Fatalf("floor 0: %d %v", n, err)
	}
	for want := int64(1); want <= 3; want++ {
		if seq, ok, err := e.c.NextSeq(e.ctx, "c"); err != nil || !ok || seq != want {
			t.Fatalf("NextSeq = %d %v %v, want %d", seq, ok, err, want)
		}
	}
	if n, _ := e.c.SetSeqFloor(e.ctx, "c2", 41); n != 41 {
		t.Fatalf("floor 41: %d", n)
	}
	if seq, ok, _ := e.c.NextSeq(e.ctx, "c2"); !ok || seq != 42 {
		t.Fatalf("after floor 41: %d", seq)
	}
	if _, _, err := e.c.NextSeq(e.ctx, "bad id"); chatstate.ErrorCode(err) != chatstate.EINVALID {
		t.Fatalf("bad id: %v", err)
	}

	if _, found, err := e.c.CachedMessage(e.ctx, "c", "u", "cm1"); found || err != nil {
		t.Fatalf("not cached yet: %v %v", found, err)
	}
	m, _, err := e.c.AddMessage(e.ctx, chatstate.Message{ConversationID: "c", SenderID: "u", Content: "x", ClientMessageID: "cm1", Seq: 4})
	must(t, err)
	got, found, err := e.c.CachedMessage(e.ctx, "c", "u", "cm1")
	if err != nil || !found || got != m {
		t.Fatalf("cached: %+v %v %v, want %+v", got, found, err, m)
	}
}
