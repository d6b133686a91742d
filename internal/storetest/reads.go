package storetest

import (
	"slices"
	"testing"

	"github.com/chatstate/chatstate"
)

func testReadPositions(t *testing.T, e *env) {
	s, conv, other := e.s, e.id("conv"), e.id("conv")
	alice, bob := e.id("u"), e.id("u")
	if got, err := s.ReadPositions(ctx(t), conv); err != nil || len(got) != 0 {
		t.Fatalf("ReadPositions of a new conversation = %v, %v; want empty", got, err)
	}
	set := func(user string, seq, want int64) {
		t.Helper()
		got, err := s.SetReadPosition(ctx(t), conv, user, seq)
		if err != nil || got != want {
			t.Fatalf("SetReadPosition(%s, %d) = %d, %v; want %d", user, seq, got, err, want)
		}
	}
	set(alice, 5, 5)
	set(alice, 3, 5) // never goes back
	set(alice, 9, 9)
	set(bob, 2, 2)
	if _, err := s.SetReadPosition(ctx(t), other, alice, 1); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadPositions(ctx(t), conv)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[alice] != 9 || got[bob] != 2 {
		t.Fatalf("ReadPositions = %v, want %s:9 %s:2", got, alice, bob)
	}
	_, err = s.SetReadPosition(ctx(t), conv, "bad id", 1)
	wantCode(t, "SetReadPosition bad user", err, chatstate.EINVALID)
	_, err = s.SetReadPosition(ctx(t), "", alice, 1)
	wantCode(t, "SetReadPosition empty conversation", err, chatstate.EINVALID)
	_, err = s.SetReadPosition(ctx(t), conv, alice, -1)
	wantCode(t, "SetReadPosition negative seq", err, chatstate.EINVALID)
	_, err = s.ReadPositions(ctx(t), "bad id")
	wantCode(t, "ReadPositions bad conversation", err, chatstate.EINVALID)
}

func testConversationActivity(t *testing.T, e *env) {
	s, user, peer := e.s, e.id("u"), e.id("u")
	create := func(createdAt int64) string {
		t.Helper()
		c, err := s.CreateConversation(ctx(t), chatstate.Conversation{ID: e.id("conv"), Members: []string{user, peer}, CreatedAt: createdAt})
		if err != nil {
			t.Fatal(err)
		}
		return c.ID
	}
	// quiet: no messages, so its creation time; busy: a text at 3000 and
	// a reaction at 9000 that must not count; edited: an edit and a skip
	// marker after its text at 2000; joined: a members entry at 4000.
	quiet, busy, edited, joined := create(2500), create(1000), create(1000), create(1000)
	firsts := map[string]chatstate.Message{}
	msg := func(conv string, seq, at int64, typ string) chatstate.Message {
		m := e.msg(conv, peer, seq)
		m.CreatedAt, m.Type = at, typ
		switch typ { // entries apply to the conversation's seq 1
		case "text":
			if seq == 1 {
				firsts[conv] = m
			}
		case chatstate.TypeReaction:
			m.Content, m.Target, m.TargetSeq, m.ClientMessageID = "+1", firsts[conv].ID, 1, ""
		case chatstate.TypeEdit:
			m.Target, m.TargetSeq, m.ClientMessageID = firsts[conv].ID, 1, ""
		case chatstate.TypeMembers:
			m.Members = &chatstate.MembersChange{Added: []string{e.id("joiner")}, Removed: []string{}}
		}
		return m
	}
	busy1, edited1 := msg(busy, 1, 3000, "text"), msg(edited, 1, 2000, "text")
	mustInsert(t, s,
		busy1, msg(busy, 2, 9000, chatstate.TypeReaction),
		edited1, msg(edited, 2, 8000, chatstate.TypeEdit), chatstate.SkipMarker(edited, 3, 8500),
		msg(joined, 1, 4000, chatstate.TypeMembers))
	got, err := s.ConversationActivity(ctx(t), user)
	if err != nil {
		t.Fatal(err)
	}
	want := []chatstate.ConversationActivity{{ID: joined, LastActivity: 4000}, {ID: busy, LastActivity: 3000},
		{ID: quiet, LastActivity: 2500}, {ID: edited, LastActivity: 2000}}
	if !slices.Equal(got, want) {
		t.Fatalf("ConversationActivity = %v\nwant %v", got, want)
	}
	// Ties are broken by id.
	a, b := create(5000), create(5000)
	got, err = s.ConversationActivity(ctx(t), peer)
	if err != nil {
		t.Fatal(err)
	}
	first := []string{min(a, b), max(a, b)}
	if len(got) != 6 || got[0].ID != first[0] || got[1].ID != first[1] {
		t.Fatalf("ConversationActivity with a tie = %v, want %v first", got, first)
	}
	if got, err := s.ConversationActivity(ctx(t), e.id("u")); err != nil || len(got) != 0 {
		t.Fatalf("ConversationActivity of a user without conversations = %v, %v", got, err)
	}
	_, err = s.ConversationActivity(ctx(t), "bad id")
	wantCode(t, "ConversationActivity bad user", err, chatstate.EINVALID)
}
