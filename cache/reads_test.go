package cache

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
)

// send reserves and commits one message of conv through the durable path.
func (e *env) send(conv, sender, typ string, at int64, members ...string) chatstate.Message {
	e.t.Helper()
	r, err := e.c.Reserve(e.ctx, conv, sender, "")
	must(e.t, err)
	if r.Missing {
		_, err = e.c.SetSeqFloor(e.ctx, conv, 0)
		must(e.t, err)
		r, err = e.c.Reserve(e.ctx, conv, sender, "")
		must(e.t, err)
	}
	m := validEntry(chatstate.Message{ID: chatstate.NewID(), ConversationID: conv, SenderID: sender, Content: "x", Type: typ, Seq: r.Seq, CreatedAt: at})
	_, err = e.c.Commit(e.ctx, m, Publish{Members: members})
	must(e.t, err)
	return m
}

// validEntry fills in what a timeline entry of m's type carries (its
// target is the conversation's seq 1, which these tests never read back).
func validEntry(m chatstate.Message) chatstate.Message {
	switch m.Type {
	case chatstate.TypeEdit:
		m.Target, m.TargetSeq = "first", 1
	case chatstate.TypeReaction:
		m.Target, m.TargetSeq, m.Content = "first", 1, "+1"
	case chatstate.TypeDelete:
		m.Target, m.TargetSeq, m.Content = "first", 1, ""
	case chatstate.TypeMembers:
		m.Members = &chatstate.MembersChange{Added: []string{"newcomer"}, Removed: []string{}}
	}
	return m
}

func (e *env) summary(conv, user string) Summary {
	e.t.Helper()
	s, err := e.c.Summaries(e.ctx, user, []string{conv})
	must(e.t, err)
	return s[0]
}

func (e *env) mark(conv, user string, seq int64, interval time.Duration) ReadMark {
	e.t.Helper()
	r, err := e.c.MarkRead(e.ctx, conv, user, seq, interval)
	must(e.t, err)
	return r
}

func testReadsAndUnread(t *testing.T, nc newClientFunc) {
	e := newEnv(t, nc, Config{})
	// Only texts from others count; a member's own text raises its read
	// position; edits, reactions and membership entries never count.
	e.send("c", "alice", "text", 1)
	e.send("c", "bob", "text", 2)
	e.send("c", "bob", chatstate.TypeReaction, 3)
	last := e.send("c", "alice", "text", 4)
	e.send("c", "alice", chatstate.TypeEdit, 5)
	e.send("c", "bob", chatstate.TypeMembers, 6)
	a, b := e.summary("c", "alice"), e.summary("c", "bob")
	if a.LastSeq != 6 || a.LastMessage == nil || *a.LastMessage != last || a.ReadSeq != 4 || a.Unread != 0 || a.ReadsFilled {
		t.Fatalf("alice's summary %+v, want lastSeq 6, lastMessage seq 4, read 4, unread 0, not filled", a)
	}
	if b.ReadSeq != 2 || b.Unread != 1 {
		t.Fatalf("bob's summary %+v, want read 2 and 1 unread (alice's seq 4)", b)
	}
	if r := e.mark("c", "bob", 3, time.Hour); !r.NotFilled {
		t.Fatalf("mark before the store fill: %+v, want NotFilled", r)
	}
	// The store's positions merge by max: bob's 2 stays, carol's 5 arrives.
	must(t, e.c.FillReads(e.ctx, "c", map[string]int64{"bob": 1, "carol": 5}))
	reads, filled, err := e.c.Reads(e.ctx, "c")
	must(t, err)
	if !filled || len(reads) != 3 || reads["alice"] != 4 || reads["bob"] != 2 || reads["carol"] != 5 {
		t.Fatalf("Reads = %v filled %v", reads, filled)
	}
	// Past the last seq is capped; a receipt may go at once.
	if r := e.mark("c", "bob", 100, time.Hour); r.Seq != 6 || r.Receipt != 6 || r.Wait != 0 || !r.Raised {
		t.Fatalf("mark 100: %+v, want seq 6 with a receipt", r)
	}
	if s := e.summary("c", "bob"); s.Unread != 0 || s.ReadSeq != 6 || !s.ReadsFilled {
		t.Fatalf("bob after reading: %+v", s)
	}
	// Never back; nothing new to announce.
	if r := e.mark("c", "bob", 3, time.Hour); r.Seq != 6 || r.Receipt != 0 || r.Wait != 0 || r.Raised {
		t.Fatalf("mark 3 after 6: %+v", r)
	}
	e.send("c", "alice", "text", 7)
	e.send("c", "alice", "text", 8)
	if s := e.summary("c", "bob"); s.Unread != 2 {
		t.Fatalf("bob's unread after two more: %+v", s)
	}
	// Within the interval the receipt is held back, then flushed (seq 0)
	// with the latest position.
	r := e.mark("c", "bob", 7, time.Hour)
	if r.Seq != 7 || r.Receipt != 0 || r.Wait <= 0 || r.Wait > time.Hour {
		t.Fatalf("mark 7 within the interval: %+v, want held back", r)
	}
	if r := e.mark("c", "bob", 0, time.Hour); r.Seq != 7 || r.Receipt != 0 || r.Wait <= 0 {
		t.Fatalf("flush within the interval: %+v", r)
	}
	// carol uses a short interval: her second receipt goes once it passed.
	if r := e.mark("c", "carol", 6, 50*time.Millisecond); r.Receipt != 6 {
		t.Fatalf("carol's first mark: %+v", r)
	}
	if r := e.mark("c", "carol", 8, 50*time.Millisecond); r.Seq != 8 || r.Receipt != 0 {
		t.Fatalf("carol's second mark within 50ms: %+v, want held back", r)
	}
	eventually(t, 10*time.Second, "held-back receipt flushed", func() bool {
		return e.mark("c", "carol", 0, 50*time.Millisecond).Receipt == 8
	})
	if r := e.mark("c", "carol", 0, 50*time.Millisecond); r.Receipt != 0 || r.Wait != 0 {
		t.Fatalf("flush after the receipt went: %+v, want nothing", r)
	}

	// A conversation Redis lost the summary of: marks ask for a fill.
	must(t, e.c.FillReads(e.ctx, "d", nil))
	if r := e.mark("d", "bob", 1, time.Hour); !r.NoSummary {
		t.Fatalf("mark without a summary: %+v, want NoSummary", r)
	}
	if s := e.summary("d", "bob"); !s.Missing || s.LastMessage != nil {
		t.Fatalf("summary of d: %+v, want missing", s)
	}
	m := chatstate.Message{ID: "m1", ConversationID: "d", SenderID: "alice", Type: "text", Content: "hi", Seq: 3, CreatedAt: 9}
	must(t, e.c.FillSummary(e.ctx, "d", 4, &m))
	if r := e.mark("d", "bob", 9, time.Hour); r.Seq != 4 || r.Receipt != 4 {
		t.Fatalf("mark after the fill: %+v", r)
	}
	if s := e.summary("d", "bob"); s.Missing || s.LastSeq != 4 || s.LastMessage == nil || *s.LastMessage != m {
		t.Fatalf("filled summary: %+v", s)
	}
	_, err = e.c.MarkRead(e.ctx, "c", "bad id", 1, time.Second)
	wantCode(t, err, chatstate.EINVALID)
	_, err = e.c.MarkRead(e.ctx, "c", "bob", -1, time.Second)
	wantCode(t, err, chatstate.EINVALID)
}

func testUnreadLimit(t *testing.T, nc newClientFunc) {
	e := newEnv(t, nc, Config{UnreadLimit: 3})
	for i := int64(1); i <= 5; i++ {
		e.send("c", "alice", "text", i)
	}
	if s := e.summary("c", "bob"); s.Unread != 3 || s.LastSeq != 5 {
		t.Fatalf("unread past the limit: %+v, want 3 (the limit)", s)
	}
	must(t, e.c.FillReads(e.ctx, "c", map[string]int64{"bob": 4}))
	if s := e.summary("c", "bob"); s.Unread != 1 {
		t.Fatalf("unread within the limit: %+v, want 1", s)
	}
}

func testConversationList(t *testing.T, nc newClientFunc) {
	e := newEnv(t, nc, Config{})
	page := func(user string, limit int, cursor string) ListPage {
		t.Helper()
		p, err := e.c.ConversationPage(e.ctx, user, limit, cursor)
		must(t, err)
		return p
	}
	ids := func(p ListPage) []string {
		var out []string
		for _, a := range p.Entries {
			out = append(out, a.ID)
		}
		return out
	}
	if p := page("u", 10, ""); !p.Missing {
		t.Fatalf("uncached list: %+v, want Missing", p)
	}
	// A touch of an uncached list leaves it uncached (the store has it).
	must(t, e.c.TouchConversation(e.ctx, "a", 1, []string{"u"}))
	if p := page("u", 10, ""); !p.Missing {
		t.Fatalf("list after a touch: %+v, want still Missing", p)
	}
	must(t, e.c.FillConversationList(e.ctx, "u", []chatstate.ConversationActivity{
		{ID: "a", LastActivity: 3000}, {ID: "b", LastActivity: 2000}, {ID: "c", LastActivity: 2000}, {ID: "d", LastActivity: 1000}}))
	if ttl := e.pttl(e.c.keys.ConvList("u")); ttl <= 0 {
		t.Fatalf("list TTL %d", ttl)
	}
	// Equal activity comes in reverse id order; every page size walks
	// the same order without repeats or gaps.
	want := []string{"a", "c", "b", "d"}
	for limit := 1; limit <= 5; limit++ {
		var all []string
		cursor, pages := "", 0
		for {
			p := page("u", limit, cursor)
			if p.Missing || len(p.Entries) > limit {
				t.Fatalf("page %+v of limit %d", p, limit)
			}
			all = append(all, ids(p)...)
			pages++
			if cursor = p.Cursor; cursor == "" {
				break
			}
		}
		if !slices.Equal(all, want) || pages != (len(want)+limit-1)/limit {
			t.Fatalf("limit %d: %v in %d pages, want %v", limit, all, pages, want)
		}
	}
	if p := page("u", 4, ""); p.Entries[0].LastActivity != 3000 || p.Cursor != "" {
		t.Fatalf("whole list: %+v", p)
	}
	// A commit that bumps activity moves its conversation up for the
	// given members; a reaction does not.
	e.send("d", "v", "text", 5000, "u", "v")
	e.send("b", "v", "text", 100) // the reaction's target; no members, so no list moves
	e.send("b", "v", chatstate.TypeReaction, 6000, "u", "v")
	if got := ids(page("u", 10, "")); !slices.Equal(got, []string{"d", "a", "c", "b"}) {
		t.Fatalf("after a text in d and a reaction in b: %v", got)
	}
	if p := page("v", 10, ""); !p.Missing {
		t.Fatalf("v's list was never filled: %+v", p)
	}
	// Touches never move a conversation down.
	must(t, e.c.TouchConversation(e.ctx, "d", 10, []string{"u"}))
	must(t, e.c.RemoveFromConversationList(e.ctx, "u", "a"))
	if got := ids(page("u", 10, "")); !slices.Equal(got, []string{"d", "c", "b"}) {
		t.Fatalf("after an old touch and a removal: %v", got)
	}
	for _, bad := range []string{"x", "1:", ":a", "-1:a", "1:a b"} {
		_, err := e.c.ConversationPage(e.ctx, "u", 2, bad)
		wantCode(t, err, chatstate.EINVALID)
	}
	_, err := e.c.ConversationPage(e.ctx, "u", 0, "")
	wantCode(t, err, chatstate.EINVALID)
}

// The list's last message is the cached copy while it is cached, so a
// timeline edit that rewrites the cached original shows there.
func testSummaryReadsCachedCopy(t *testing.T, nc newClientFunc) {
	e := newEnv(t, nc, Config{})
	m := e.send("c", "alice", "text", 1)
	edited := m
	edited.Content = "edited"
	b, _ := json.Marshal(edited)
	key := e.c.keys.Messages("c")
	e.do(e.client.B().Zremrangebyscore().Key(key).Min("1").Max("1").Build())
	e.do(e.client.B().Zadd().Key(key).ScoreMember().ScoreMember(1, string(b)).Build())
	if s := e.summary("c", "bob"); s.LastMessage == nil || *s.LastMessage != edited {
		t.Fatalf("last message %+v, want the cached copy %+v", s.LastMessage, edited)
	}
	e.do(e.client.B().Del().Key(key).Build())
	if s := e.summary("c", "bob"); s.LastMessage == nil || *s.LastMessage != m {
		t.Fatalf("last message once uncached %+v, want the summary's %+v", s.LastMessage, m)
	}
}
