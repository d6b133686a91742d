package storetest

import (
	"encoding/json"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/chatstate/chatstate"
)

// Timeline entries (edit, delete, reaction, members) are stored like
// messages, read back with their entry fields, and applied to their target
// so that every read (MessagesAfter, MessagesBefore, MessageByID) shows the
// final state, whatever order concurrent entries were stored in: the state
// of applying them in seq order (chatstate.Message.Apply, the cache's rule).

func (e *env) entry(orig chatstate.Message, typ, sender string, seq int64, content string, remove bool) chatstate.Message {
	m := e.msg(orig.ConversationID, sender, seq)
	m.Type, m.Content, m.Remove, m.Target, m.TargetSeq, m.ClientMessageID = typ, content, remove, orig.ID, orig.Seq, ""
	return m
}

// wantView fails unless the store shows orig as want in all three reads.
func wantView(t *testing.T, e *env, want chatstate.Message) {
	t.Helper()
	reads := map[string]chatstate.Message{}
	got, err := e.s.MessageByID(ctx(t), want.ConversationID, want.ID)
	if err != nil {
		t.Fatalf("MessageByID: %v", err)
	}
	reads["MessageByID"] = got
	if a := after(t, e.s, want.ConversationID, want.Seq-1, 1); len(a) == 1 {
		reads["MessagesAfter"] = a[0]
	}
	if b := before(t, e.s, want.ConversationID, want.Seq+1, 1); len(b) == 1 {
		reads["MessagesBefore"] = b[0]
	}
	if len(reads) != 3 {
		t.Fatalf("message %s missing from a read: %v", want.ID, reads)
	}
	for what, got := range reads {
		if !reflect.DeepEqual(got, want) {
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(want)
			t.Fatalf("%s:\n got %s\nwant %s", what, g, w)
		}
	}
}

func testTimelineEdit(t *testing.T, e *env) {
	conv, alice := e.id("c"), e.id("u")
	orig := e.msg(conv, alice, 1)
	mustInsert(t, e.s, orig)
	edit2 := e.entry(orig, chatstate.TypeEdit, alice, 2, "second", false)
	edit3 := e.entry(orig, chatstate.TypeEdit, alice, 3, "third", false)
	// Concurrent edits stored out of seq order: the higher seq wins.
	mustInsert(t, e.s, edit3)
	mustInsert(t, e.s, edit2)
	want := orig
	want.Apply(edit2)
	want.Apply(edit3)
	if want.Content != "third" || want.EditedAt != edit3.CreatedAt {
		t.Fatalf("Apply: %+v", want)
	}
	wantView(t, e, want)
	// The entries themselves are in the timeline, in seq order.
	all := after(t, e.s, conv, 0, 10)
	wantSeqs(t, "timeline", all, 1, 2, 3)
	if all[1] != edit2 || all[2] != edit3 {
		t.Fatalf("entries read back as\n%+v\n%+v\nwant\n%+v\n%+v", all[1], all[2], edit2, edit3)
	}
	_, err := e.s.MessageByID(ctx(t), conv, e.id("m"))
	wantCode(t, "MessageByID(unknown)", err, chatstate.ENOTFOUND)
	_, err = e.s.MessageByID(ctx(t), e.id("c"), orig.ID)
	wantCode(t, "MessageByID(other conversation)", err, chatstate.ENOTFOUND)
	_, err = e.s.MessageByID(ctx(t), conv, "bad id")
	wantCode(t, "MessageByID(bad id)", err, chatstate.EINVALID)
}

func testTimelineDelete(t *testing.T, e *env) {
	conv, alice, bob := e.id("c"), e.id("u"), e.id("u")
	orig := e.msg(conv, alice, 1)
	mustInsert(t, e.s, orig)
	entries := []chatstate.Message{
		e.entry(orig, chatstate.TypeEdit, alice, 2, "edited", false),
		e.entry(orig, chatstate.TypeReaction, bob, 3, "👍", false),
		e.entry(orig, chatstate.TypeDelete, alice, 4, "", false),
		// After the delete (a race the gateway cannot rule out): no effect.
		e.entry(orig, chatstate.TypeEdit, alice, 5, "too late", false),
		e.entry(orig, chatstate.TypeReaction, bob, 6, "🎉", false),
	}
	// Stored out of order: the delete first.
	mustInsert(t, e.s, entries[2], entries[4])
	mustInsert(t, e.s, entries[0], entries[3], entries[1])
	want := orig
	for _, en := range entries {
		want.Apply(en)
	}
	if !want.Deleted || want.Content != "" || want.EditedAt != 0 || want.Reactions != nil {
		t.Fatalf("Apply: %+v", want)
	}
	wantView(t, e, want)
	wantSeqs(t, "timeline", after(t, e.s, conv, 0, 10), 1, 2, 3, 4, 5, 6)
}

func testTimelineReactions(t *testing.T, e *env) {
	conv, alice, bob, carol := e.id("c"), e.id("u"), e.id("u.dot"), e.id("u")
	orig := e.msg(conv, alice, 1)
	other := e.msg(conv, alice, 2)
	mustInsert(t, e.s, orig, other)
	entries := []chatstate.Message{
		e.entry(orig, chatstate.TypeReaction, bob, 3, "👍", false),
		e.entry(orig, chatstate.TypeReaction, carol, 4, "👍", false),
		e.entry(orig, chatstate.TypeReaction, bob, 5, "❤️", false),
		e.entry(orig, chatstate.TypeReaction, alice, 6, "a.b", false),
		e.entry(orig, chatstate.TypeReaction, bob, 7, "👍", true),
		e.entry(orig, chatstate.TypeReaction, bob, 8, "👍", false), // back, now after carol
		e.entry(orig, chatstate.TypeReaction, alice, 9, "a.b", true),
		e.entry(orig, chatstate.TypeReaction, carol, 10, "🎉", false),
	}
	// Stored in a scrambled order, some in one batch.
	for _, idx := range [][]int{{7, 4}, {1, 6}, {0}, {5, 2, 3}} {
		var batch []chatstate.Message
		for _, i := range idx {
			batch = append(batch, entries[i])
		}
		mustInsert(t, e.s, batch...)
	}
	want := orig
	for _, en := range entries {
		want.Apply(en)
	}
	wantReactions := chatstate.Reactions{"👍": {carol, bob}, "❤️": {bob}, "🎉": {carol}}
	if want.Reactions == nil || !reflect.DeepEqual(*want.Reactions, wantReactions) {
		t.Fatalf("Apply: %+v", want.Reactions)
	}
	wantView(t, e, want)
	wantView(t, e, other) // untouched
	if n := want.UserReactions(bob); n != 2 {
		t.Fatalf("UserReactions(bob) = %d, want 2", n)
	}
}

func testTimelineMembersEntry(t *testing.T, e *env) {
	conv, admin := e.id("c"), e.id("u")
	m := e.msg(conv, admin, 1)
	m.Type, m.Content, m.ClientMessageID = chatstate.TypeMembers, "", ""
	m.Members = &chatstate.MembersChange{Added: []string{e.id("u"), e.id("u")}, Removed: []string{e.id("u")}}
	mustInsert(t, e.s, m)
	got := after(t, e.s, conv, 0, 10)
	if len(got) != 1 || !reflect.DeepEqual(got[0], m) {
		t.Fatalf("members entry read back as %+v, want %+v", got, m)
	}
	// An empty list reads back as [], not null.
	only := e.msg(conv, admin, 4)
	only.Type, only.Content, only.ClientMessageID = chatstate.TypeMembers, "", ""
	only.Members = &chatstate.MembersChange{Added: []string{}, Removed: []string{e.id("u")}}
	mustInsert(t, e.s, only)
	if got := after(t, e.s, conv, 3, 1); len(got) != 1 || got[0].Members == nil || got[0].Members.Added == nil || !reflect.DeepEqual(got[0], only) {
		t.Fatalf("members entry with an empty list read back as %+v", got)
	}
	bad := m
	bad.Seq, bad.ID, bad.Members = 2, e.id("m"), nil
	wantCode(t, "members entry without members", insert(t, e.s, bad)[0], chatstate.EINVALID)
	edit := e.entry(m, chatstate.TypeEdit, admin, 3, "", false)
	wantCode(t, "edit without content", insert(t, e.s, edit)[0], chatstate.EINVALID)
}

func testUpdateMembers(t *testing.T, e *env) {
	a, b, c, d := e.id("u"), e.id("u"), e.id("u"), e.id("u")
	conv, err := e.s.CreateConversation(ctx(t), chatstate.Conversation{ID: e.id("c"), Members: []string{a, b}})
	if err != nil {
		t.Fatal(err)
	}
	got, eff, err := e.s.UpdateMembers(ctx(t), conv.ID, chatstate.MembersChange{Added: []string{c, a, d, c}, Removed: []string{b, e.id("u")}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Members, []string{a, c, d}) || !slices.Equal(eff.Added, []string{c, d}) || !slices.Equal(eff.Removed, []string{b}) {
		t.Fatalf("UpdateMembers = %v, effective %+v", got.Members, eff)
	}
	if got.CreatedAt != conv.CreatedAt || got.ID != conv.ID {
		t.Fatalf("UpdateMembers changed the conversation: %+v", got)
	}
	read, err := e.s.Conversation(ctx(t), conv.ID)
	if err != nil || !slices.Equal(read.Members, []string{a, c, d}) {
		t.Fatalf("Conversation after update = %v, %v", read.Members, err)
	}
	if in, err := e.s.IsMember(ctx(t), conv.ID, b); err != nil || in {
		t.Fatalf("IsMember(removed) = %v, %v", in, err)
	}
	if in, err := e.s.IsMember(ctx(t), conv.ID, d); err != nil || !in {
		t.Fatalf("IsMember(added) = %v, %v", in, err)
	}
	if ids, err := e.s.ConversationsOf(ctx(t), b); err != nil || slices.Contains(ids, conv.ID) {
		t.Fatalf("ConversationsOf(removed) = %v, %v", ids, err)
	}
	if ids, err := e.s.ConversationsOf(ctx(t), c); err != nil || !slices.Contains(ids, conv.ID) {
		t.Fatalf("ConversationsOf(added) = %v, %v", ids, err)
	}
	// A no-op change is not an error.
	if got, eff, err := e.s.UpdateMembers(ctx(t), conv.ID, chatstate.MembersChange{Added: []string{a}}); err != nil ||
		len(eff.Added)+len(eff.Removed) != 0 || !slices.Equal(got.Members, []string{a, c, d}) {
		t.Fatalf("no-op UpdateMembers = %v, %+v, %v", got.Members, eff, err)
	}
	// Re-adding a removed member appends it.
	if got, _, err := e.s.UpdateMembers(ctx(t), conv.ID, chatstate.MembersChange{Added: []string{b}}); err != nil ||
		!slices.Equal(got.Members, []string{a, c, d, b}) {
		t.Fatalf("re-add = %v, %v", got.Members, err)
	}
	_, _, err = e.s.UpdateMembers(ctx(t), e.id("c"), chatstate.MembersChange{Added: []string{a}})
	wantCode(t, "unknown conversation", err, chatstate.ENOTFOUND)
	_, _, err = e.s.UpdateMembers(ctx(t), conv.ID, chatstate.MembersChange{Removed: []string{a, b, c, d}})
	wantCode(t, "remove everyone", err, chatstate.EINVALID)
	_, _, err = e.s.UpdateMembers(ctx(t), conv.ID, chatstate.MembersChange{Added: []string{a}, Removed: []string{a}})
	wantCode(t, "add and remove one id", err, chatstate.EINVALID)
	_, _, err = e.s.UpdateMembers(ctx(t), conv.ID, chatstate.MembersChange{Added: []string{"bad id"}})
	wantCode(t, "bad id", err, chatstate.EINVALID)
	if read, _ := e.s.Conversation(ctx(t), conv.ID); !slices.Equal(read.Members, []string{a, c, d, b}) {
		t.Fatalf("a refused change changed the members: %v", read.Members)
	}
}

func testConcurrentUpdateMembers(t *testing.T, e *env) {
	conv, err := e.s.CreateConversation(ctx(t), chatstate.Conversation{ID: e.id("c"), Members: []string{e.id("u")}})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	added := make([]string, 8)
	errs := make([]error, len(added))
	for i := range added {
		added[i] = e.id("u")
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, errs[i] = e.s.UpdateMembers(ctx(t), conv.ID, chatstate.MembersChange{Added: []string{added[i]}})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("UpdateMembers %d: %v", i, err)
		}
	}
	read, err := e.s.Conversation(ctx(t), conv.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range added {
		if !slices.Contains(read.Members, id) {
			t.Fatalf("concurrent adds lost %s: %v", id, read.Members)
		}
	}
}
