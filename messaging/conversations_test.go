package messaging

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/cache"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/chatstate/chatstate/sqlitestore"
)

// The conversation list and unread counts are exact, paginate in activity
// order, and come back the same from the store after Redis lost its data.
func TestConversationsSurviveRedisLoss(t *testing.T) {
	srv := redistest.StartServer(t)
	client := srv.Client(t)
	ctx := redistest.Ctx(t)
	store, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "db.sqlite"), sqlitestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close(context.Background()) })
	members := func(ctx context.Context, conv string) ([]string, error) {
		c, err := store.Conversation(ctx, conv)
		return c.Members, err
	}
	svc := New(cache.New(client, cache.Config{KeyPrefix: redistest.Prefix(t)}), store, Config{Reads: store, Members: members})
	runCtx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	go svc.Run(runCtx)
	for i, id := range []string{"c1", "c2", "c3", "gone"} {
		if _, err := store.CreateConversation(ctx, chatstate.Conversation{ID: id, Members: []string{"alice", "bob"}, CreatedAt: int64(1000 * (i + 1))}); err != nil {
			t.Fatal(err)
		}
	}
	at := int64(10000)
	last := map[string]chatstate.Message{}
	send := func(conv, sender, typ string) {
		t.Helper()
		at++
		m := chatstate.Message{ConversationID: conv, SenderID: sender, Content: "x", Type: typ, CreatedAt: at}
		if typ == chatstate.TypeReaction { // on the conversation's last message
			m.Content, m.Target, m.TargetSeq = "+1", last[conv].ID, last[conv].Seq
		}
		sent, err := svc.Send(ctx, m, cache.Publish{Members: []string{"alice", "bob"}})
		if err != nil {
			t.Fatal(err)
		}
		last[conv] = sent.Message
	}
	send("c3", "bob", "text")     // c3: 1
	send("c1", "bob", "text")     // c1: 1
	send("c1", "bob", "text")     // c1: 2
	send("c2", "alice", "text")   // c2: 1, alice's own
	send("c2", "bob", "reaction") // c2: 2, not counted, no activity
	if m, err := svc.MarkRead(ctx, "c1", "alice", 1, time.Second); err != nil || m.Seq != 1 || m.Receipt != 1 {
		t.Fatalf("MarkRead: %+v, %v", m, err)
	}
	type entry struct {
		id              string
		unread, readSeq int64
	}
	list := func(limit int) []entry {
		t.Helper()
		var out []entry
		cursor := ""
		for {
			p, err := svc.Conversations(ctx, "alice", limit, cursor)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Conversations) > limit {
				t.Fatalf("page of %d over limit %d", len(p.Conversations), limit)
			}
			for _, c := range p.Conversations {
				out = append(out, entry{c.ID, c.Unread, c.ReadSeq})
			}
			if cursor = p.Cursor; cursor == "" {
				return out
			}
		}
	}
	// The first read fills the list from the store: activity order.
	want := []entry{{"c2", 0, 1}, {"c1", 1, 1}, {"c3", 1, 0}, {"gone", 0, 0}}
	if got := list(2); !slices.Equal(got, want) {
		t.Fatalf("list %v, want %v", got, want)
	}
	// Cached from now on: a new message moves its conversation up; a
	// conversation alice left drops out.
	send("c3", "bob", "text")
	// Simulate leaving: the members lookup no longer lists alice.
	svc.cfg.Members = func(ctx context.Context, conv string) ([]string, error) {
		if conv == "gone" {
			return []string{"bob"}, nil
		}
		return members(ctx, conv)
	}
	want = []entry{{"c3", 2, 0}, {"c2", 0, 1}, {"c1", 1, 1}}
	if got := list(1); !slices.Equal(got, want) {
		t.Fatalf("list after a message in c3 %v, want %v", got, want)
	}

	srv.Restart(t) // Redis loses everything
	deadline := time.Now().Add(30 * time.Second)
	var got []entry
	for {
		p, err := svc.Conversations(ctx, "alice", 10, "")
		if err == nil {
			for _, c := range p.Conversations {
				got = append(got, entry{c.ID, c.Unread, c.ReadSeq})
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no list after the restart: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline while the client reconnects
	}
	if !slices.Equal(got, want) {
		t.Fatalf("list after Redis lost its data %v, want %v (from the store)", got, want)
	}
	reads, err := svc.Reads(ctx, "c2")
	if err != nil || reads["alice"] != 1 {
		t.Fatalf("c2 reads after the loss: %v, %v; want alice at her own message", reads, err)
	}
	if m, err := svc.MarkRead(ctx, "c3", "alice", 5, time.Second); err != nil || m.Seq != 2 {
		t.Fatalf("MarkRead after the loss: %+v, %v; want capped at 2", m, err)
	}
	if _, err := svc.Conversations(ctx, "alice", -1, ""); chatstate.ErrorCode(err) != chatstate.EINVALID {
		t.Fatalf("negative limit: %v", err)
	}
}
