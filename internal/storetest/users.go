package storetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
)

func testConversationCreateGet(t *testing.T, e *env) {
	a, b, c := e.id("u"), e.id("u"), e.id("u")
	in := chatstate.Conversation{ID: e.id("c"), Members: []string{b, a, b, c, a}, CreatedAt: 1700000000123}
	got, err := e.s.CreateConversation(ctx(t), in)
	want := chatstate.Conversation{ID: in.ID, Members: []string{b, a, c}, CreatedAt: in.CreatedAt}
	if err != nil || !sameConversation(got, want) {
		t.Fatalf("CreateConversation = %+v, %v; want %+v", got, err, want)
	}
	got, err = e.s.Conversation(ctx(t), in.ID)
	if err != nil || !sameConversation(got, want) {
		t.Fatalf("Conversation = %+v, %v; want %+v", got, err, want)
	}

	again := chatstate.Conversation{ID: in.ID, Members: []string{e.id("u")}, CreatedAt: 5}
	_, err = e.s.CreateConversation(ctx(t), again)
	wantCode(t, "CreateConversation(existing id)", err, chatstate.ECONFLICT)
	got, err = e.s.Conversation(ctx(t), in.ID)
	if err != nil || !sameConversation(got, want) {
		t.Fatalf("after the conflict Conversation = %+v, %v; want it unchanged %+v", got, err, want)
	}
}

func sameConversation(a, b chatstate.Conversation) bool {
	return a.ID == b.ID && a.CreatedAt == b.CreatedAt && slices.Equal(a.Members, b.Members)
}

func testConversationCreatedAtDefault(t *testing.T, e *env) {
	start := time.Now().Add(-time.Minute).UnixMilli()
	in := chatstate.Conversation{ID: e.id("c"), Members: []string{e.id("u")}}
	got, err := e.s.CreateConversation(ctx(t), in)
	if err != nil {
		t.Fatal(err)
	}
	if got.CreatedAt < start || got.CreatedAt > time.Now().Add(time.Minute).UnixMilli() {
		t.Fatalf("CreatedAt = %d, want about now (%d)", got.CreatedAt, time.Now().UnixMilli())
	}
	stored, err := e.s.Conversation(ctx(t), in.ID)
	if err != nil || stored.CreatedAt != got.CreatedAt {
		t.Fatalf("stored CreatedAt = %d, %v; want %d", stored.CreatedAt, err, got.CreatedAt)
	}
}

func testConversationNotFound(t *testing.T, e *env) {
	_, err := e.s.Conversation(ctx(t), e.id("c"))
	wantCode(t, "Conversation(unknown)", err, chatstate.ENOTFOUND)
	_, err = e.s.IsMember(ctx(t), e.id("c"), e.id("u"))
	wantCode(t, "IsMember(unknown conversation)", err, chatstate.ENOTFOUND)
}

func testIsMember(t *testing.T, e *env) {
	a, b := e.id("u"), e.id("u")
	conv := e.id("c")
	if _, err := e.s.CreateConversation(ctx(t), chatstate.Conversation{ID: conv, Members: []string{a, b}, CreatedAt: 1}); err != nil {
		t.Fatal(err)
	}
	for user, want := range map[string]bool{a: true, b: true, e.id("u"): false} {
		got, err := e.s.IsMember(ctx(t), conv, user)
		if err != nil || got != want {
			t.Fatalf("IsMember(%s) = %v, %v; want %v", user, got, err, want)
		}
	}
}

func testConversationsOf(t *testing.T, e *env) {
	a, b := e.id("u"), e.id("u")
	var ofA, ofB []string
	for i := range 5 {
		conv := chatstate.Conversation{ID: e.id("c"), Members: []string{a}, CreatedAt: int64(i + 1)}
		ofA = append(ofA, conv.ID)
		if i%2 == 0 {
			conv.Members = append(conv.Members, b)
			ofB = append(ofB, conv.ID)
		}
		if _, err := e.s.CreateConversation(ctx(t), conv); err != nil {
			t.Fatal(err)
		}
	}
	for user, want := range map[string][]string{a: ofA, b: ofB, e.id("u"): {}} {
		got, err := e.s.ConversationsOf(ctx(t), user)
		if err != nil || !slices.Equal(sortedStrings(got), sortedStrings(want)) {
			t.Fatalf("ConversationsOf(%s) = %v, %v; want %v (any order)", user, got, err, want)
		}
	}
}

func testInvalidConversations(t *testing.T, e *env) {
	s, c := e.s, ctx(t)
	_, err := s.CreateConversation(c, chatstate.Conversation{Members: []string{"a"}})
	wantCode(t, "CreateConversation(no id)", err, chatstate.EINVALID)
	_, err = s.CreateConversation(c, chatstate.Conversation{ID: "c 1", Members: []string{"a"}})
	wantCode(t, "CreateConversation(bad id)", err, chatstate.EINVALID)
	bad := e.id("c")
	_, err = s.CreateConversation(c, chatstate.Conversation{ID: bad, Members: []string{"a", "b}"}})
	wantCode(t, "CreateConversation(bad member)", err, chatstate.EINVALID)
	_, err = s.CreateConversation(c, chatstate.Conversation{ID: e.id("c"), Members: []string{"a"}, CreatedAt: -1})
	wantCode(t, "CreateConversation(negative createdAt)", err, chatstate.EINVALID)
	_, err = s.Conversation(c, bad)
	wantCode(t, "a rejected conversation is not stored", err, chatstate.ENOTFOUND)
	_, err = s.Conversation(c, "")
	wantCode(t, "Conversation(empty)", err, chatstate.EINVALID)
	_, err = s.IsMember(c, "", "a")
	wantCode(t, "IsMember(empty conv)", err, chatstate.EINVALID)
	_, err = s.IsMember(c, "c", "a\n")
	wantCode(t, "IsMember(bad user)", err, chatstate.EINVALID)
	_, err = s.ConversationsOf(c, strings.Repeat("u", chatstate.MaxIDLen+1))
	wantCode(t, "ConversationsOf(too long)", err, chatstate.EINVALID)
}

func testFriends(t *testing.T, e *env) {
	u, other := e.id("u"), e.id("u")
	friends := func(user string) []string {
		t.Helper()
		got, err := e.s.Friends(ctx(t), user)
		if err != nil {
			t.Fatalf("Friends(%s): %v", user, err)
		}
		return got
	}
	set := func(user string, list []string) {
		t.Helper()
		if err := e.s.SetFriends(ctx(t), user, list); err != nil {
			t.Fatalf("SetFriends(%s, %v): %v", user, list, err)
		}
	}
	if got := friends(u); len(got) != 0 {
		t.Fatalf("Friends of an unknown user = %v, want empty", got)
	}
	f1, f2, f3 := e.id("f"), e.id("f"), e.id("f")
	set(u, []string{f2, f1, f2, f3})
	set(other, []string{f3})
	if got := friends(u); !slices.Equal(got, []string{f2, f1, f3}) {
		t.Fatalf("Friends = %v, want %v", got, []string{f2, f1, f3})
	}
	set(u, []string{f3})
	if got := friends(u); !slices.Equal(got, []string{f3}) {
		t.Fatalf("Friends after replace = %v, want [%s]", got, f3)
	}
	set(u, []string{})
	if got := friends(u); len(got) != 0 {
		t.Fatalf("Friends after clearing = %v, want empty", got)
	}
	set(u, []string{f1})
	set(u, nil)
	if got := friends(u); len(got) != 0 {
		t.Fatalf("Friends after SetFriends(nil) = %v, want empty", got)
	}
	if got := friends(other); !slices.Equal(got, []string{f3}) {
		t.Fatalf("another user's friends = %v, want [%s]", got, f3)
	}
	err := e.s.SetFriends(ctx(t), u, []string{f1, "bad friend"})
	wantCode(t, "SetFriends(bad id)", err, chatstate.EINVALID)
	if got := friends(u); len(got) != 0 {
		t.Fatalf("a rejected SetFriends changed the list to %v", got)
	}
}

func testLastSeen(t *testing.T, e *env) {
	u := e.id("u")
	get := func() int64 {
		t.Helper()
		at, err := e.s.LastSeen(ctx(t), u)
		if err != nil {
			t.Fatalf("LastSeen: %v", err)
		}
		return at
	}
	if at := get(); at != 0 {
		t.Fatalf("LastSeen of an unknown user = %d, want 0", at)
	}
	for _, at := range []int64{1700000000000, 1700000005000} {
		if err := e.s.SetLastSeen(ctx(t), u, at); err != nil {
			t.Fatal(err)
		}
		if got := get(); got != at {
			t.Fatalf("LastSeen = %d, want %d", got, at)
		}
	}
	// Friends and last seen live side by side; setting one keeps the other.
	if err := e.s.SetFriends(ctx(t), u, []string{"f1"}); err != nil {
		t.Fatal(err)
	}
	if got := get(); got != 1700000005000 {
		t.Fatalf("LastSeen after SetFriends = %d", got)
	}
	if err := e.s.SetLastSeen(ctx(t), u, 1700000009000); err != nil {
		t.Fatal(err)
	}
	if got, err := e.s.Friends(ctx(t), u); err != nil || !slices.Equal(got, []string{"f1"}) {
		t.Fatalf("Friends after SetLastSeen = %v, %v", got, err)
	}
	wantCode(t, "SetLastSeen(negative)", e.s.SetLastSeen(ctx(t), u, -1), chatstate.EINVALID)
}

func testDeviceTokens(t *testing.T, e *env) {
	u, other := e.id("u"), e.id("u")
	list := func(user string) []chatstate.DeviceToken {
		t.Helper()
		got, err := e.s.DeviceTokens(ctx(t), user)
		if err != nil {
			t.Fatalf("DeviceTokens: %v", err)
		}
		slices.SortFunc(got, func(a, b chatstate.DeviceToken) int { return strings.Compare(a.DeviceID, b.DeviceID) })
		return got
	}
	set := func(user string, tok chatstate.DeviceToken) {
		t.Helper()
		if err := e.s.SetDeviceToken(ctx(t), user, tok); err != nil {
			t.Fatalf("SetDeviceToken(%+v): %v", tok, err)
		}
	}
	if got := list(u); len(got) != 0 {
		t.Fatalf("tokens of an unknown user = %v", got)
	}
	d1 := chatstate.DeviceToken{DeviceID: "d1", Platform: "android", Token: "fcm:APA91b-x_Y.z", UpdatedAt: 1000}
	d2 := chatstate.DeviceToken{DeviceID: "d2", Platform: "ios", Token: strings.Repeat("ab12", 16), UpdatedAt: 2000}
	set(u, d1)
	set(u, d2)
	set(other, chatstate.DeviceToken{DeviceID: "d1", Platform: "ios", Token: "other", UpdatedAt: 3})
	if got := list(u); !slices.Equal(got, []chatstate.DeviceToken{d1, d2}) {
		t.Fatalf("DeviceTokens = %+v, want %+v", got, []chatstate.DeviceToken{d1, d2})
	}

	d1b := chatstate.DeviceToken{DeviceID: "d1", Platform: "ios", Token: "rotated", UpdatedAt: 5000}
	set(u, d1b)
	if got := list(u); !slices.Equal(got, []chatstate.DeviceToken{d1b, d2}) {
		t.Fatalf("after replacing d1 = %+v, want %+v", got, []chatstate.DeviceToken{d1b, d2})
	}

	start := time.Now().Add(-time.Minute).UnixMilli()
	set(u, chatstate.DeviceToken{DeviceID: "d3", Platform: "android", Token: "t3"})
	got := list(u)
	if len(got) != 3 || got[2].DeviceID != "d3" || got[2].UpdatedAt < start {
		t.Fatalf("d3 with UpdatedAt 0: %+v, want UpdatedAt filled with about now", got)
	}

	for range 2 { // removing twice: the second is a no-op, not an error
		if err := e.s.RemoveDeviceToken(ctx(t), u, "d1"); err != nil {
			t.Fatalf("RemoveDeviceToken: %v", err)
		}
	}
	if got := list(u); len(got) != 2 || got[0] != d2 || got[1].DeviceID != "d3" {
		t.Fatalf("after removing d1 = %+v", got)
	}
	if got := list(other); len(got) != 1 || got[0].Token != "other" {
		t.Fatalf("another user's tokens = %+v", got)
	}

	// A stale token's removal leaves the device's newer token alone.
	if err := e.s.RemoveDeviceTokenIf(ctx(t), u, "d2", "an old token"); err != nil {
		t.Fatalf("RemoveDeviceTokenIf: %v", err)
	}
	if got := list(u); len(got) != 2 || got[0] != d2 {
		t.Fatalf("a stale removal took the current token: %+v", got)
	}
	if err := e.s.RemoveDeviceTokenIf(ctx(t), u, "d2", d2.Token); err != nil {
		t.Fatalf("RemoveDeviceTokenIf: %v", err)
	}
	if got := list(u); len(got) != 1 || got[0].DeviceID != "d3" {
		t.Fatalf("after removing d2 by its token = %+v", got)
	}

	for name, tok := range map[string]chatstate.DeviceToken{
		"no device":          {Platform: "android", Token: "t"},
		"bad device":         {DeviceID: "d 1", Platform: "android", Token: "t"},
		"unknown platform":   {DeviceID: "d9", Platform: "sms", Token: "t"},
		"no platform":        {DeviceID: "d9", Token: "t"},
		"no token":           {DeviceID: "d9", Platform: "android"},
		"token with space":   {DeviceID: "d9", Platform: "android", Token: "a b"},
		"token with newline": {DeviceID: "d9", Platform: "ios", Token: "ab\n"},
		"negative updatedAt": {DeviceID: "d9", Platform: "ios", Token: "ab", UpdatedAt: -1},
	} {
		wantCode(t, name, e.s.SetDeviceToken(ctx(t), u, tok), chatstate.EINVALID)
	}
	if got := list(u); len(got) != 1 {
		t.Fatalf("rejected tokens were stored: %+v", got)
	}
}

func testInvalidUsers(t *testing.T, e *env) {
	s, c := e.s, ctx(t)
	for _, user := range []string{"", "a b", "{u}", strings.Repeat("u", chatstate.MaxIDLen+1)} {
		_, err := s.Friends(c, user)
		wantCode(t, "Friends", err, chatstate.EINVALID)
		wantCode(t, "SetFriends", s.SetFriends(c, user, []string{"f"}), chatstate.EINVALID)
		wantCode(t, "SetLastSeen", s.SetLastSeen(c, user, 1), chatstate.EINVALID)
		_, err = s.LastSeen(c, user)
		wantCode(t, "LastSeen", err, chatstate.EINVALID)
		wantCode(t, "SetDeviceToken", s.SetDeviceToken(c, user, chatstate.DeviceToken{DeviceID: "d", Platform: "android", Token: "t"}), chatstate.EINVALID)
		_, err = s.DeviceTokens(c, user)
		wantCode(t, "DeviceTokens", err, chatstate.EINVALID)
		wantCode(t, "RemoveDeviceToken", s.RemoveDeviceToken(c, user, "d"), chatstate.EINVALID)
	}
	wantCode(t, "RemoveDeviceToken(bad device)", s.RemoveDeviceToken(c, "u", ""), chatstate.EINVALID)
	wantCode(t, "RemoveDeviceTokenIf(bad device)", s.RemoveDeviceTokenIf(c, "u", "", "t"), chatstate.EINVALID)
}
