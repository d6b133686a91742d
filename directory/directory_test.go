package directory

import (
	"os"
	"slices"
	"testing"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Run(m)) }

func TestConversations(t *testing.T) {
	c, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	d := NewRedis(c, Config{KeyPrefix: prefix, MaxMembers: 3})

	conv, err := d.CreateConversation(ctx, chatstate.Conversation{ID: "c1", Members: []string{"alice", "bob", "alice"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(conv.Members, []string{"alice", "bob"}) {
		t.Fatalf("members %v", conv.Members)
	}
	if _, err := d.CreateConversation(ctx, chatstate.Conversation{ID: "c1", Members: []string{"carol"}}); chatstate.ErrorCode(err) != chatstate.ECONFLICT {
		t.Fatalf("duplicate create: %v", err)
	}
	gen, err := d.CreateConversation(ctx, chatstate.Conversation{Members: []string{"carol"}})
	if err != nil || gen.ID == "" {
		t.Fatalf("generated id: %+v %v", gen, err)
	}
	if ok, err := d.IsMember(ctx, "c1", "bob"); !ok || err != nil {
		t.Fatalf("bob member: %v %v", ok, err)
	}
	if ok, err := d.IsMember(ctx, "c1", "carol"); ok || err != nil {
		t.Fatalf("carol member: %v %v", ok, err)
	}
	if _, err := d.IsMember(ctx, "nope", "bob"); chatstate.ErrorCode(err) != chatstate.ENOTFOUND {
		t.Fatalf("unknown conversation: %v", err)
	}
	m, err := d.Members(ctx, "c1")
	slices.Sort(m)
	if err != nil || !slices.Equal(m, []string{"alice", "bob"}) {
		t.Fatalf("members %v %v", m, err)
	}
	if _, err := d.Members(ctx, "nope"); chatstate.ErrorCode(err) != chatstate.ENOTFOUND {
		t.Fatalf("members of unknown: %v", err)
	}
	for _, bad := range []chatstate.Conversation{
		{ID: "has space", Members: []string{"a"}},
		{ID: "x{y}", Members: []string{"a"}},
		{ID: "ok", Members: nil},
		{ID: "ok", Members: []string{"a", "b", "c", "d"}},
		{ID: "ok", Members: []string{""}},
	} {
		if _, err := d.CreateConversation(ctx, bad); err == nil || chatstate.ErrorCode(err) == chatstate.EINTERNAL {
			t.Errorf("%+v: want typed error, got %v", bad, err)
		}
	}
}

func TestFriends(t *testing.T) {
	c, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	d := NewRedis(c, Config{KeyPrefix: prefix})
	if f, err := d.Friends(ctx, "alice"); err != nil || len(f) != 0 {
		t.Fatalf("no friends yet: %v %v", f, err)
	}
	if err := d.SetFriends(ctx, "alice", []string{"bob", "carol"}); err != nil {
		t.Fatal(err)
	}
	if err := d.SetFriends(ctx, "alice", []string{"dave"}); err != nil {
		t.Fatal(err)
	}
	if f, _ := d.Friends(ctx, "alice"); !slices.Equal(f, []string{"dave"}) {
		t.Fatalf("replace: %v", f)
	}
	if err := d.SetFriends(ctx, "alice", nil); err != nil {
		t.Fatal(err)
	}
	if f, _ := d.Friends(ctx, "alice"); len(f) != 0 {
		t.Fatalf("cleared: %v", f)
	}
	if err := d.SetFriends(ctx, "alice", []string{"bad id"}); chatstate.ErrorCode(err) != chatstate.EINVALID {
		t.Fatalf("bad friend id: %v", err)
	}
}
