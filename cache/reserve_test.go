package cache

import (
	"testing"

	"github.com/chatstate/chatstate"
)

func testReserve(t *testing.T, nc newClientFunc) {
	e := newEnv(t, nc, Config{})
	if r, err := e.c.Reserve(e.ctx, "c", "u", "cm1"); err != nil || !r.Missing {
		t.Fatalf("missing counter: %+v %v", r, err)
	}
	// Restoring a floor of 0 creates the counter (a new conversation).
	if n, err := e.c.SetSeqFloor(e.ctx, "c", 0); err != nil || n != 0 {
		t.Fatalf("floor 0: %d %v", n, err)
	}
	for want := int64(1); want <= 3; want++ {
		if r, err := e.c.Reserve(e.ctx, "c", "u", ""); err != nil || r.Missing || r.Duplicate || r.Seq != want {
			t.Fatalf("Reserve = %+v %v, want seq %d", r, err, want)
		}
	}
	if n, _ := e.c.SetSeqFloor(e.ctx, "c2", 41); n != 41 {
		t.Fatalf("floor 41: %d", n)
	}
	if r, _ := e.c.Reserve(e.ctx, "c2", "u", "x"); r.Seq != 42 {
		t.Fatalf("after floor 41: %+v", r)
	}
	for _, bad := range [][3]string{{"bad id", "u", ""}, {"c", "", ""}, {"c", "u", "x{"}} {
		if _, err := e.c.Reserve(e.ctx, bad[0], bad[1], bad[2]); chatstate.ErrorCode(err) != chatstate.EINVALID {
			t.Fatalf("%q: %v", bad, err)
		}
	}
	// A cached message answers its resend without taking a seq.
	m, _, err := e.c.AddMessage(e.ctx, chatstate.Message{ConversationID: "c", SenderID: "u", Content: "x", ClientMessageID: "cm1", Seq: 4})
	must(t, err)
	r, err := e.c.Reserve(e.ctx, "c", "u", "cm1")
	if err != nil || !r.Duplicate || r.Cached != m {
		t.Fatalf("cached resend: %+v %v, want %+v", r, err, m)
	}
	if r, _ := e.c.Reserve(e.ctx, "c", "other", "cm1"); r.Duplicate || r.Seq != 5 {
		t.Fatalf("same clientMessageId from another sender is new: %+v", r)
	}
}
