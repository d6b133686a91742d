package cache

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/chatstate/chatstate"
)

// dedupeEnv sends durable messages through Reserve and Commit, as
// messaging.Service does without the store.
type dedupeEnv struct {
	*env
	t *testing.T
}

func (d dedupeEnv) send(m chatstate.Message) chatstate.Message {
	d.t.Helper()
	r, err := d.c.Reserve(d.ctx, m.ConversationID, m.SenderID, m.ClientMessageID)
	must(d.t, err)
	if r.Duplicate || r.Missing {
		d.t.Fatalf("reserve %s: %+v", m.ClientMessageID, r)
	}
	m.Seq = r.Seq
	if m.Type == "" {
		m.Type = "text"
	}
	if m.ID == "" {
		m.ID = "m" + itoa(r.Seq)
	}
	m.CreatedAt = 1764578677000 + r.Seq
	c, err := d.c.Commit(d.ctx, m, Publish{})
	must(d.t, err)
	if c.Already || c.Settled != m.Seq {
		d.t.Fatalf("commit %s: %+v", m.ClientMessageID, c)
	}
	return c.Message
}

func (d dedupeEnv) text(cmid, content string) chatstate.Message {
	return d.send(chatstate.Message{ConversationID: "c", SenderID: "alice", ClientMessageID: cmid, Content: content})
}

func (d dedupeEnv) zcard(key string) int64 {
	return d.int(d.client.B().Zcard().Key(key).Build())
}

// testDedupeWindow: a resend is answered from the messages cache with the
// message's current copy while it is cached; the index holds no more
// entries than the cache; past the window Reserve takes a seq (the store
// refuses the copy), and committing the original again does not publish it.
func testDedupeWindow(t *testing.T, nc newClientFunc) {
	d := dedupeEnv{newEnv(t, nc, Config{}), t}
	_, err := d.c.SetSeqFloor(d.ctx, "c", 0)
	must(t, err)
	first := d.text("cm-0", "hello")

	// Within the window: the cached copy, no seq taken.
	r, err := d.c.Reserve(d.ctx, "c", "alice", "cm-0")
	must(t, err)
	if !r.Duplicate || !reflect.DeepEqual(r.Cached, first) {
		t.Fatalf("resend: %+v, want %+v", r, first)
	}
	if n, _ := d.c.LastSeq(d.ctx, "c"); n != 1 {
		t.Fatalf("a cached resend took a seq: counter %d", n)
	}

	// An edit rewrites the cached original: a resend answers the edited
	// copy, as the store does (no pre-edit snapshot is kept).
	edit := d.send(chatstate.Message{ConversationID: "c", SenderID: "alice", ClientMessageID: "cm-edit", Type: chatstate.TypeEdit,
		Content: "hello, edited", Target: first.ID, TargetSeq: first.Seq})
	want := first
	want.Apply(edit)
	r, err = d.c.Reserve(d.ctx, "c", "alice", "cm-0")
	must(t, err)
	if !r.Duplicate || !reflect.DeepEqual(r.Cached, want) || r.Cached.Content != "hello, edited" {
		t.Fatalf("resend after edit: %+v, want %+v", r.Cached, want)
	}
	// The edit entry itself is deduplicated too.
	if r, _ := d.c.Reserve(d.ctx, "c", "alice", "cm-edit"); !r.Duplicate || r.Cached != edit {
		t.Fatalf("resent edit: %+v", r)
	}

	// 1,000 more messages: the index keeps the newest MessageLimit ids.
	for i := 1; i <= 1000; i++ {
		d.text(fmt.Sprintf("cm-%d", i), "x")
	}
	limit := int64(d.c.Config().MessageLimit)
	if n := d.zcard(d.c.keys.Dedupe("c")); n != limit {
		t.Fatalf("dedupe index holds %d ids, want %d", n, limit)
	}
	if n := d.zcard(d.c.keys.Messages("c")); n != limit {
		t.Fatalf("cache holds %d messages, want %d", n, limit)
	}
	last := int64(1002)
	if r, _ := d.c.Reserve(d.ctx, "c", "alice", "cm-1000"); !r.Duplicate || r.Cached.Seq != last {
		t.Fatalf("newest resend: %+v", r)
	}

	// Past the window: a fresh seq, which the send skips once the store
	// refused the copy; committing the stored original is a no-op.
	r, err = d.c.Reserve(d.ctx, "c", "alice", "cm-0")
	must(t, err)
	if r.Duplicate || r.Seq != last+1 {
		t.Fatalf("resend past the window: %+v, want seq %d", r, last+1)
	}
	w, err := d.c.Settle(d.ctx, "c", r.Seq)
	must(t, err)
	if w.Settled != r.Seq {
		t.Fatalf("skip: %+v", w)
	}
	c, err := d.c.Commit(d.ctx, want, Publish{})
	must(t, err)
	if !c.Already || !reflect.DeepEqual(c.Message, want) {
		t.Fatalf("commit of the original past the window: %+v", c)
	}
	if got, _ := d.c.Messages(d.ctx, "c", 0, 1); len(got) != 1 || got[0].Seq != last-limit+1 {
		t.Fatalf("the old original came back into the cache: %+v", got)
	}

	// After a restore (Redis lost data), a seq at or below the floor that
	// the cache does not show may never have been published: committing it
	// publishes and caches it.
	_, err = d.c.SetSeqFloor(d.ctx, "c2", 7)
	must(t, err)
	orphan := chatstate.Message{ID: "o", ConversationID: "c2", SenderID: "alice", ClientMessageID: "cm-o", Content: "o", Type: "text", Seq: 7, CreatedAt: 1}
	c, err = d.c.Commit(d.ctx, orphan, Publish{})
	must(t, err)
	if c.Already || c.Message != orphan || c.Settled != 7 {
		t.Fatalf("commit of a restored seq: %+v", c)
	}
	if c, _ := d.c.Commit(d.ctx, orphan, Publish{}); !c.Already {
		t.Fatalf("second commit of a restored seq published again: %+v", c)
	}
	if r, _ := d.c.Reserve(d.ctx, "c2", "alice", "cm-o"); !r.Duplicate || r.Cached != orphan {
		t.Fatalf("resend of the restored message: %+v", r)
	}
}

// TestDedupeMemoryBound: after 1,000 messages of 216-byte JSON with
// UUID-sized client ids, the dedupe index holds MessageLimit entries, stays
// a listpack, and takes less memory than the messages cache it indexes
// (MEMORY USAGE; redis-server only: miniredis has no MEMORY USAGE).
func TestDedupeMemoryBound(t *testing.T) {
	d := dedupeEnv{newEnv(t, realRedis, Config{}), t}
	_, err := d.c.SetSeqFloor(d.ctx, "c", 0)
	must(t, err)
	for i := 0; i < 1000; i++ {
		d.text(fmt.Sprintf("%08x-4b1e-4c3a-9d2f-%012x", i, i), strings.Repeat("m", 40))
	}
	if n := d.zcard(d.c.keys.Dedupe("c")); n != 100 {
		t.Fatalf("dedupe index holds %d ids, want 100", n)
	}
	enc, err := d.do(d.client.B().ObjectEncoding().Key(d.c.keys.Dedupe("c")).Build()).ToString()
	must(t, err)
	if enc != "listpack" {
		t.Fatalf("dedupe index encoding %q, want listpack", enc)
	}
	usage := func(key string) int64 {
		return d.int(d.client.B().MemoryUsage().Key(key).Samples(0).Build())
	}
	idx, msgs := usage(d.c.keys.Dedupe("c")), usage(d.c.keys.Messages("c"))
	t.Logf("MEMORY USAGE: dedupe %d B, messages %d B", idx, msgs)
	if idx*4 > msgs {
		t.Fatalf("dedupe index %d B is over a quarter of the messages cache %d B", idx, msgs)
	}
	if n := d.int(d.client.B().Exists().Key(d.c.keys.Restored("c")).Build()); n != 0 {
		t.Fatal("a new conversation has a restored floor")
	}
}
