package cache

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/chatstate/chatstate"
)

// testTimelineApply: committing edit, delete and reaction entries updates
// the cached copy of their target in seq order, even when the entries are
// committed out of order, to the view chatstate.Message.Apply gives (the
// stores' view); a target no longer cached is left alone.
func testTimelineApply(t *testing.T, nc newClientFunc) {
	e := newEnv(t, nc, Config{})
	_, err := e.c.SetSeqFloor(e.ctx, "c", 0)
	must(t, err)
	reserve := func() int64 {
		r, err := e.c.Reserve(e.ctx, "c", "u", "")
		must(t, err)
		return r.Seq
	}
	commit := func(m chatstate.Message) {
		t.Helper()
		_, err := e.c.Commit(e.ctx, m, Publish{})
		must(t, err)
	}
	mk := func(id string, seq int64) chatstate.Message {
		return chatstate.Message{ID: id, ConversationID: "c", SenderID: "alice", Content: "héllo \"x\" </>", Type: "text",
			Seq: seq, CreatedAt: 1764578677123 + seq, ClientMessageID: "cm-" + id}
	}
	a, b := mk("a", reserve()), mk("b", reserve())
	commit(a)
	commit(b)
	entry := func(target chatstate.Message, typ, sender, content string, remove bool) chatstate.Message {
		seq := reserve()
		return chatstate.Message{ID: "e" + itoa(seq), ConversationID: "c", SenderID: sender, Type: typ, Content: content, Remove: remove,
			Target: target.ID, TargetSeq: target.Seq, Seq: seq, CreatedAt: 1764578677123 + seq}
	}
	entries := []chatstate.Message{
		entry(a, chatstate.TypeEdit, "alice", "edited ✓", false),
		entry(a, chatstate.TypeReaction, "bob", "👍", false),
		entry(a, chatstate.TypeReaction, "carol", "👍", false),
		entry(a, chatstate.TypeReaction, "bob", "❤️", false),
		entry(a, chatstate.TypeReaction, "bob", "👍", true),
		entry(a, chatstate.TypeEdit, "alice", "edited twice", false),
		entry(b, chatstate.TypeReaction, "bob", "🎉", false),
		entry(b, chatstate.TypeDelete, "alice", "", false),
		entry(b, chatstate.TypeEdit, "alice", "after delete", false),
	}
	// Committed in reverse: nothing applies until the lowest commits, then
	// all apply in seq order.
	for i := len(entries) - 1; i >= 0; i-- {
		commit(entries[i])
	}
	wantA, wantB := a, b
	for _, en := range entries {
		if en.Target == a.ID {
			wantA.Apply(en)
		} else {
			wantB.Apply(en)
		}
	}
	cached, err := e.c.Messages(e.ctx, "c", 0, 100)
	must(t, err)
	if len(cached) != 2+len(entries) {
		t.Fatalf("cached %d messages, want %d", len(cached), 2+len(entries))
	}
	for i, want := range []chatstate.Message{wantA, wantB} {
		if !reflect.DeepEqual(cached[i], want) {
			g, _ := json.Marshal(cached[i])
			w, _ := json.Marshal(want)
			t.Fatalf("cached original %d:\n got %s\nwant %s", i, g, w)
		}
	}
	if wantA.Content != "edited twice" || wantA.Reactions == nil || !reflect.DeepEqual(*wantA.Reactions, chatstate.Reactions{"👍": {"carol"}, "❤️": {"bob"}}) || !wantB.Deleted {
		t.Fatalf("reference views: %+v %+v", wantA, wantB)
	}
	for i, en := range entries {
		if cached[2+i] != en {
			t.Fatalf("cached entry %d = %+v, want %+v", i, cached[2+i], en)
		}
	}
	// A target that is not cached (evicted, or older than the cache) is
	// not created by its entry.
	gone := entry(chatstate.Message{ID: "old", Seq: 1}, chatstate.TypeEdit, "alice", "x", false)
	gone.TargetSeq = 1
	gone.Target = "not-a"
	commit(gone)
	cached, err = e.c.Messages(e.ctx, "c", 0, 1)
	must(t, err)
	if !reflect.DeepEqual(cached[0], wantA) {
		t.Fatalf("an entry for another id changed seq 1: %+v", cached[0])
	}
}
