package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/chatstate/chatstate"
)

// smallLimits are the limits of env.small: small enough to reach each one.
var smallLimits = chatstate.StoreLimits{
	MaxBatch: 3, MaxContentBytes: 10, MaxPageSize: 4, MaxMembers: 3, MaxFriends: 3, MaxDeviceTokens: 2, MaxTokenBytes: 8,
	MaxConversationsOf: 3,
}

func members(n int, prefix string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

// The defaults (chatstate.Default*) hold on a store opened with zero limits.
func testLimitsDefault(t *testing.T, e *env) {
	s, c := e.s, ctx(t)
	conv := e.id("conv")
	mustInsert(t, s, e.msg(conv, e.id("u"), 1))
	if got, err := s.MessagesAfter(c, conv, 0, chatstate.DefaultMaxPageSize); err != nil || len(got) != 1 {
		t.Fatalf("MessagesAfter(limit %d) = %v, %v", chatstate.DefaultMaxPageSize, got, err)
	}
	_, err := s.MessagesAfter(c, conv, 0, chatstate.DefaultMaxPageSize+1)
	wantCode(t, "MessagesAfter over the default MaxPageSize", err, chatstate.ETOOLARGE)
	_, err = s.MessagesBefore(c, conv, 5, chatstate.DefaultMaxPageSize+1)
	wantCode(t, "MessagesBefore over the default MaxPageSize", err, chatstate.ETOOLARGE)

	u := e.id("u")
	if _, err := s.CreateConversation(c, chatstate.Conversation{ID: e.id("conv"), Members: members(chatstate.DefaultMaxMembers, u)}); err != nil {
		t.Fatalf("CreateConversation with the default MaxMembers: %v", err)
	}
	big := e.id("conv")
	_, err = s.CreateConversation(c, chatstate.Conversation{ID: big, Members: members(chatstate.DefaultMaxMembers+1, u)})
	wantCode(t, "members over the default MaxMembers", err, chatstate.ETOOLARGE)
	_, err = s.Conversation(c, big)
	wantCode(t, "a refused conversation", err, chatstate.ENOTFOUND)

	user := e.id("u")
	for i := range chatstate.DefaultMaxDeviceTokens + 1 {
		tok := chatstate.DeviceToken{DeviceID: fmt.Sprintf("d%02d", i), Platform: "android", Token: "t", UpdatedAt: int64(1000 + i)}
		if err := s.SetDeviceToken(c, user, tok); err != nil {
			t.Fatalf("SetDeviceToken #%d: %v", i, err)
		}
	}
	toks, err := s.DeviceTokens(c, user)
	if err != nil || len(toks) != chatstate.DefaultMaxDeviceTokens || slices.ContainsFunc(toks, func(d chatstate.DeviceToken) bool { return d.DeviceID == "d00" }) {
		t.Fatalf("after %d devices: %d tokens %v (%v), want %d without the oldest, d00",
			chatstate.DefaultMaxDeviceTokens+1, len(toks), toks, err, chatstate.DefaultMaxDeviceTokens)
	}

	m := e.msg(e.id("conv"), e.id("u"), 1)
	m.Content = strings.Repeat("x", chatstate.DefaultMaxContentBytes+1)
	wantCode(t, "content over the default MaxContentBytes", insert(t, s, m)[0], chatstate.ETOOLARGE)
	tok := chatstate.DeviceToken{DeviceID: "d", Platform: "ios", Token: strings.Repeat("a", chatstate.DefaultMaxTokenBytes+1)}
	wantCode(t, "token over the default MaxTokenBytes", s.SetDeviceToken(c, e.id("u"), tok), chatstate.ETOOLARGE)
}

func testLimitsNegative(t *testing.T, e *env) {
	for _, l := range []chatstate.StoreLimits{{MaxPageSize: -1}, {MaxMembers: -1}, {MaxDeviceTokens: -1}, {MaxBatch: -1}, {MaxConversationsOf: -1}} {
		s, err := e.newStore(t, l)
		if err == nil {
			s.Close(context.Background())
		}
		wantCode(t, fmt.Sprintf("open with %+v", l), err, chatstate.EINVALID)
	}
}

// A page over MaxPageSize is refused, never clamped: a clamped page would
// look like the end of the history.
func testLimitPageSize(t *testing.T, e *env) {
	s, c := e.small, ctx(t)
	conv, sender := e.id("conv"), e.id("u")
	for seq := int64(1); seq <= 5; seq += 2 {
		mustInsert(t, s, e.msg(conv, sender, seq), e.msg(conv, sender, seq+1))
	}
	wantSeqs(t, "MessagesAfter at MaxPageSize", after(t, s, conv, 0, 4), 1, 2, 3, 4)
	wantSeqs(t, "MessagesBefore at MaxPageSize", before(t, s, conv, 7, 4), 3, 4, 5, 6)
	for _, limit := range []int{5, 1000} {
		_, err := s.MessagesAfter(c, conv, 0, limit)
		wantCode(t, fmt.Sprintf("MessagesAfter(limit %d) over MaxPageSize 4", limit), err, chatstate.ETOOLARGE)
		_, err = s.MessagesBefore(c, conv, 7, limit)
		wantCode(t, fmt.Sprintf("MessagesBefore(limit %d) over MaxPageSize 4", limit), err, chatstate.ETOOLARGE)
	}
}

// Members over MaxMembers (after duplicates are dropped) are refused and
// nothing is stored.
func testLimitMembers(t *testing.T, e *env) {
	s, c := e.small, ctx(t)
	u := e.id("u")
	ok := e.id("conv")
	if _, err := s.CreateConversation(c, chatstate.Conversation{ID: ok, Members: members(3, u)}); err != nil {
		t.Fatalf("MaxMembers members: %v", err)
	}
	dup := e.id("conv")
	got, err := s.CreateConversation(c, chatstate.Conversation{ID: dup, Members: append(members(3, u), u+"-0")})
	if err != nil || len(got.Members) != 3 {
		t.Fatalf("MaxMembers members and a duplicate: %+v, %v", got, err)
	}
	over := e.id("conv")
	_, err = s.CreateConversation(c, chatstate.Conversation{ID: over, Members: members(4, u)})
	wantCode(t, "members over MaxMembers", err, chatstate.ETOOLARGE)
	_, err = s.Conversation(c, over)
	wantCode(t, "the refused conversation", err, chatstate.ENOTFOUND)
	// The id is still free.
	if _, err := s.CreateConversation(c, chatstate.Conversation{ID: over, Members: members(1, u)}); err != nil {
		t.Fatalf("reusing a refused id: %v", err)
	}
}

// A new device beyond MaxDeviceTokens evicts the least recently updated
// token (ties: the smallest device id); replacing a known device never
// evicts.
// ConversationsOf returns at most MaxConversationsOf ids, the smallest.
func testLimitConversationsOf(t *testing.T, e *env) {
	s, c := e.small, ctx(t)
	u := e.id("u")
	var ids []string
	for i := range smallLimits.MaxConversationsOf + 2 {
		id := fmt.Sprintf("%s-%02d", e.id("conv"), 9-i) // created in descending id order
		if _, err := s.CreateConversation(c, chatstate.Conversation{ID: id, Members: []string{u}}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	got, err := s.ConversationsOf(c, u)
	if err != nil || !slices.Equal(got, ids[:smallLimits.MaxConversationsOf]) {
		t.Fatalf("ConversationsOf with MaxConversationsOf %d = %v, %v; want %v", smallLimits.MaxConversationsOf, got, err, ids[:smallLimits.MaxConversationsOf])
	}
}

// ConversationActivity orders the same MaxConversationsOf conversations
// that ConversationsOf returns, however recent the others are.
func testLimitConversationActivity(t *testing.T, e *env) {
	s, c := e.small, ctx(t)
	u, base := e.id("u"), e.id("conv")
	var ids []string
	for i := range smallLimits.MaxConversationsOf + 2 {
		id := fmt.Sprintf("%s-%02d", base, 9-i)
		if _, err := s.CreateConversation(c, chatstate.Conversation{ID: id, Members: []string{u}, CreatedAt: int64(1000 + i)}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	// The newest conversations have the largest activity and the smallest
	// ids; the cap keeps the smallest ids, newest first.
	want := make([]chatstate.ConversationActivity, 0, smallLimits.MaxConversationsOf)
	for i := len(ids) - 1; i >= len(ids)-smallLimits.MaxConversationsOf; i-- {
		want = append(want, chatstate.ConversationActivity{ID: ids[i], LastActivity: int64(1000 + i)})
	}
	got, err := s.ConversationActivity(c, u)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("ConversationActivity with MaxConversationsOf %d = %v, %v; want %v", smallLimits.MaxConversationsOf, got, err, want)
	}
}

func testLimitDeviceTokens(t *testing.T, e *env) {
	s, c := e.small, ctx(t)
	u := e.id("u")
	set := func(dev string, at int64) {
		t.Helper()
		if err := s.SetDeviceToken(c, u, chatstate.DeviceToken{DeviceID: dev, Platform: "android", Token: "t" + dev, UpdatedAt: at}); err != nil {
			t.Fatalf("SetDeviceToken(%s): %v", dev, err)
		}
	}
	devices := func(want ...string) {
		t.Helper()
		toks, err := s.DeviceTokens(c, u)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, tok := range toks {
			ids = append(ids, tok.DeviceID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, want) {
			t.Fatalf("devices %v, want %v", ids, want)
		}
	}
	set("old", 100)
	set("new", 300)
	set("old", 400) // a refresh: "new" is now the least recent
	set("new", 300)
	devices("new", "old")
	set("third", 500)
	devices("old", "third")
	set("fourth", 600)
	devices("fourth", "third")
	// Ties on updatedAt: the smallest device id goes.
	set("b", 700)
	set("a", 700)
	devices("a", "b")
	set("c", 800)
	devices("b", "c")
}

// The other limits refuse with too_large and store nothing of what they
// refuse.
func testLimitsOthers(t *testing.T, e *env) {
	s, c := e.small, ctx(t)
	conv, sender := e.id("conv"), e.id("u")
	_, err := s.InsertMessages(c, []chatstate.Message{e.msg(conv, sender, 1), e.msg(conv, sender, 2), e.msg(conv, sender, 3), e.msg(conv, sender, 4)})
	wantCode(t, "batch over MaxBatch", err, chatstate.ETOOLARGE)
	if n, err := s.LastSeq(c, conv); err != nil || n != 0 {
		t.Fatalf("a refused batch stored messages: LastSeq %d, %v", n, err)
	}
	at, over := e.msg(conv, sender, 1), e.msg(conv, sender, 2)
	at.Content, over.Content = "0123456789", "0123456789x"
	errs := insert(t, s, at, over)
	if errs[0] != nil {
		t.Fatalf("content at MaxContentBytes: %v", errs[0])
	}
	wantCode(t, "content over MaxContentBytes", errs[1], chatstate.ETOOLARGE)
	wantSeqs(t, "after a refused content", after(t, s, conv, 0, 4), 1)

	u := e.id("u")
	if err := s.SetFriends(c, u, []string{"a", "b", "c", "a"}); err != nil {
		t.Fatalf("MaxFriends friends and a duplicate: %v", err)
	}
	wantCode(t, "friends over MaxFriends", s.SetFriends(c, u, []string{"a", "b", "c", "d"}), chatstate.ETOOLARGE)
	if got, err := s.Friends(c, u); err != nil || len(got) != 3 {
		t.Fatalf("friends after a refused list: %v, %v", got, err)
	}
	if err := s.SetDeviceToken(c, u, chatstate.DeviceToken{DeviceID: "d", Platform: "ios", Token: "12345678"}); err != nil {
		t.Fatalf("token at MaxTokenBytes: %v", err)
	}
	wantCode(t, "token over MaxTokenBytes", s.SetDeviceToken(c, u, chatstate.DeviceToken{DeviceID: "e", Platform: "ios", Token: "123456789"}), chatstate.ETOOLARGE)
	if toks, err := s.DeviceTokens(c, u); err != nil || len(toks) != 1 {
		t.Fatalf("tokens after a refused one: %v, %v", toks, err)
	}
}
