package directory

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/cache"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/chatstate/chatstate/sqlitestore"
)

func TestMain(m *testing.M) { os.Exit(redistest.Run(m)) }

type fixture struct {
	ctx    context.Context
	d      *Directory
	cache  *cache.Cache
	store  *sqlitestore.Store
	count  func(key string) int64
	prefix string
}

func setup(t *testing.T, cfg Config) *fixture {
	t.Helper()
	c, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	store, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "db.sqlite"), sqlitestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close(context.Background()) })
	cfg.KeyPrefix = prefix
	cc := cache.New(c, cache.Config{KeyPrefix: prefix})
	return &fixture{ctx: ctx, store: store, prefix: prefix, cache: cc,
		d: New(c, store, cc, cfg),
		count: func(key string) int64 {
			n, _ := c.Do(ctx, c.B().Exists().Key(prefix+key).Build()).AsInt64()
			return n
		}}
}

func TestConversations(t *testing.T) {
	f := setup(t, Config{MaxMembers: 3})
	conv, err := f.d.CreateConversation(f.ctx, chatstate.Conversation{ID: "c1", Members: []string{"alice", "bob", "alice"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(conv.Members, []string{"alice", "bob"}) {
		t.Fatalf("members %v", conv.Members)
	}
	if _, err := f.d.CreateConversation(f.ctx, chatstate.Conversation{ID: "c1", Members: []string{"carol"}}); chatstate.ErrorCode(err) != chatstate.ECONFLICT {
		t.Fatalf("duplicate create: %v", err)
	}
	gen, err := f.d.CreateConversation(f.ctx, chatstate.Conversation{Members: []string{"carol"}})
	if err != nil || gen.ID == "" {
		t.Fatalf("generated id: %+v %v", gen, err)
	}
	if f.count("members:{c:c1}") != 0 {
		t.Fatal("nothing is cached before the first read")
	}
	m, err := f.d.Members(f.ctx, "c1")
	slices.Sort(m)
	if err != nil || !slices.Equal(m, []string{"alice", "bob"}) {
		t.Fatalf("members %v %v", m, err)
	}
	if f.count("members:{c:c1}") != 1 {
		t.Fatal("a read fills the cache")
	}
	if ok, err := f.d.IsMember(f.ctx, "c1", "bob"); !ok || err != nil {
		t.Fatalf("bob member: %v %v", ok, err)
	}
	if ok, err := f.d.IsMember(f.ctx, "c1", "carol"); ok || err != nil {
		t.Fatalf("carol member: %v %v", ok, err)
	}
	if _, err := f.d.IsMember(f.ctx, "nope", "bob"); chatstate.ErrorCode(err) != chatstate.ENOTFOUND {
		t.Fatalf("unknown conversation: %v", err)
	}
	// The unknown id is cached as unknown (the store is not asked again)...
	if f.count("members:{c:nope}") != 1 {
		t.Fatal("an unknown conversation is cached as not found")
	}
	if _, err := f.d.Members(f.ctx, "nope"); chatstate.ErrorCode(err) != chatstate.ENOTFOUND {
		t.Fatalf("cached not found: %v", err)
	}
	// ...until it is created.
	if _, err := f.d.CreateConversation(f.ctx, chatstate.Conversation{ID: "nope", Members: []string{"bob"}}); err != nil {
		t.Fatal(err)
	}
	if ok, err := f.d.IsMember(f.ctx, "nope", "bob"); !ok || err != nil {
		t.Fatalf("created after a miss: %v %v", ok, err)
	}
	for _, bad := range []chatstate.Conversation{
		{ID: "has space", Members: []string{"a"}},
		{ID: "x{y}", Members: []string{"a"}},
		{ID: "ok", Members: nil},
		{ID: "ok", Members: []string{"a", "b", "c", "d"}},
		{ID: "ok", Members: []string{""}},
	} {
		if _, err := f.d.CreateConversation(f.ctx, bad); err == nil || chatstate.ErrorCode(err) == chatstate.EINTERNAL {
			t.Errorf("%+v: want typed error, got %v", bad, err)
		}
	}
}

func TestFriendsCacheAside(t *testing.T) {
	f := setup(t, Config{})
	if fr, err := f.d.Friends(f.ctx, "alice"); err != nil || len(fr) != 0 {
		t.Fatalf("no friends yet: %v %v", fr, err)
	}
	if f.count("friends:{u:alice}") != 1 {
		t.Fatal("an empty list is cached too (a hit, not a miss)")
	}
	if err := f.d.SetFriends(f.ctx, "alice", []string{"bob", "carol"}); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := f.cache.FriendList(f.ctx, "alice"); found {
		t.Fatal("a write invalidates the cache")
	}
	// A reader that loaded the list before the write cannot cache it back.
	if err := f.cache.CacheFriendList(f.ctx, "alice", nil); err != nil {
		t.Fatal(err)
	}
	if fr, _ := f.d.Friends(f.ctx, "alice"); !slices.Equal(fr, []string{"bob", "carol"}) && !slices.Equal(fr, []string{"carol", "bob"}) {
		t.Fatalf("after write: %v (a stale fill must have been refused)", fr)
	}
	if err := f.d.SetFriends(f.ctx, "alice", nil); err != nil {
		t.Fatal(err)
	}
	if fr, _ := f.d.Friends(f.ctx, "alice"); len(fr) != 0 {
		t.Fatalf("cleared: %v", fr)
	}
	if err := f.d.SetFriends(f.ctx, "alice", []string{"bad id"}); chatstate.ErrorCode(err) != chatstate.EINVALID {
		t.Fatalf("bad friend id: %v", err)
	}
}

// A membership change is visible at once, and a cache fill that read the
// members before the change (racing it) cannot cache the old set.
func TestUpdateMembersInvalidates(t *testing.T) {
	f := setup(t, Config{StaleFor: 300 * time.Millisecond})
	if _, err := f.d.CreateConversation(f.ctx, chatstate.Conversation{ID: "c1", Members: []string{"alice", "bob"}}); err != nil {
		t.Fatal(err)
	}
	if m, err := f.d.Members(f.ctx, "c1"); err != nil || len(m) != 2 {
		t.Fatalf("members %v %v", m, err)
	}
	c, eff, err := f.d.UpdateMembers(f.ctx, "c1", chatstate.MembersChange{Added: []string{"carol"}, Removed: []string{"bob"}})
	if err != nil || !slices.Equal(c.Members, []string{"alice", "carol"}) || !slices.Equal(eff.Added, []string{"carol"}) || !slices.Equal(eff.Removed, []string{"bob"}) {
		t.Fatalf("UpdateMembers = %+v %+v %v", c, eff, err)
	}
	sorted := func() []string {
		t.Helper()
		m, err := f.d.Members(f.ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(m)
		return m
	}
	if m := sorted(); !slices.Equal(m, []string{"alice", "carol"}) {
		t.Fatalf("members right after the change: %v", m)
	}
	// A fill with the set read before the change is refused.
	n, err := cacheScript.Exec(f.ctx, f.d.client, []string{f.d.keys.Members("c1")}, []string{"60000", "alice", "bob"}).AsInt64()
	if err != nil || n != -1 {
		t.Fatalf("stale fill = %d, %v; want refused", n, err)
	}
	if m := sorted(); !slices.Equal(m, []string{"alice", "carol"}) {
		t.Fatalf("members after a stale fill: %v", m)
	}
	if ok, err := f.d.IsMember(f.ctx, "c1", "bob"); ok || err != nil {
		t.Fatalf("removed bob still a member: %v %v", ok, err)
	}
	// Once the marker expires, a read fills the cache with the new set.
	deadline := time.Now().Add(10 * time.Second)
	for {
		sorted()
		raw, err := f.d.client.Do(f.ctx, f.d.client.B().Smembers().Key(f.d.keys.Members("c1")).Build()).AsStrSlice()
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(raw)
		if slices.Equal(raw, []string{"alice", "carol"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cache never refilled: %v", raw)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	// A no-op change leaves the cache alone.
	if _, eff, err := f.d.UpdateMembers(f.ctx, "c1", chatstate.MembersChange{Added: []string{"alice"}}); err != nil || len(eff.Added) != 0 {
		t.Fatalf("no-op = %+v %v", eff, err)
	}
	if f.count("members:{c:c1}") != 1 {
		t.Fatal("a no-op change dropped the cache")
	}
	if _, _, err := f.d.UpdateMembers(f.ctx, "nope", chatstate.MembersChange{Added: []string{"alice"}}); chatstate.ErrorCode(err) != chatstate.ENOTFOUND {
		t.Fatalf("unknown conversation: %v", err)
	}
}
