package messaging

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/cache"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/chatstate/chatstate/sqlitestore"
)

// lostReply stores a batch and then reports a failure, as a MongoDB write
// does whose reply is lost to a network error or a primary step-down after
// the write was applied.
type lostReply struct {
	chatstate.MessageStore
	lose atomic.Int64
}

func (s *lostReply) InsertMessages(ctx context.Context, msgs []chatstate.Message) ([]error, error) {
	res, err := s.MessageStore.InsertMessages(ctx, msgs)
	if err == nil && s.lose.Add(-1) >= 0 {
		return nil, chatstate.Errorf(chatstate.EUNAVAILABLE, "connection reset after the write")
	}
	return res, err
}

// A send whose store write succeeded but reported a failure is answered
// unavailable; the client's resend (same clientMessageId) returns the
// stored message under its seq, it is published once, and the
// conversation goes on. The resend takes a seq of its own before the store
// says the message exists; that seq becomes a gap, which readers skip.
func TestStoreWriteWithALostReply(t *testing.T) {
	client, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	sql, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "db.sqlite"), sqlitestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sql.Close(context.Background()) })
	store := &lostReply{MessageStore: sql}
	store.lose.Store(1)
	f := setup(t, client, prefix, cache.Config{SettleTimeout: 200 * time.Millisecond})
	f.svc = New(f.cache, store, Config{})
	runCtx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	go f.svc.Run(runCtx)
	f.store = sql

	pub := cache.Publish{Channel: f.ch}
	first := chatstate.Message{ConversationID: "c1", SenderID: "alice", ClientMessageID: "cm-1", Content: "hello", Type: "text"}
	if _, err := f.svc.Send(ctx, first, pub); chatstate.ErrorCode(err) != chatstate.EUNAVAILABLE {
		t.Fatalf("send with a lost reply: %v, want unavailable", err)
	}
	again, err := f.svc.Send(ctx, first, pub)
	if err != nil || again.Message.Seq != 1 || again.Message.Content != "hello" {
		t.Fatalf("resend: %+v %v, want the stored message at seq 1", again, err)
	}
	next, err := f.svc.Send(ctx, chatstate.Message{ConversationID: "c1", SenderID: "alice", ClientMessageID: "cm-2", Content: "next", Type: "text"}, pub)
	if err != nil || next.Message.Seq <= again.Message.Seq {
		t.Fatalf("next send: %+v %v, want a seq above %d", next, err, again.Message.Seq)
	}
	if p := f.published(t); len(p) != 2 || !strings.Contains(p[0], `"content":"hello"`) || !strings.Contains(p[1], `"content":"next"`) {
		t.Fatalf("published %q, want hello once, then next", p)
	}
	stored, err := sql.MessagesAfter(ctx, "c1", 0, 10)
	if err != nil || len(stored) != 2 || stored[0].ClientMessageID != "cm-1" || stored[1].Seq != next.Message.Seq {
		t.Fatalf("store: %+v %v", stored, err)
	}
}

// The same when the client never resends: the next send settles the seq at
// its timeout, finds the stored message and publishes it, before its own.
func TestStoreWriteWithALostReplyNeverResent(t *testing.T) {
	client, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	sql, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "db.sqlite"), sqlitestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sql.Close(context.Background()) })
	store := &lostReply{MessageStore: sql}
	store.lose.Store(1)
	f := setup(t, client, prefix, cache.Config{SettleTimeout: 200 * time.Millisecond})
	pub := cache.Publish{Channel: f.ch}
	// As the gateway does (serve.go): a message this node settles for a
	// send that gave up is published to its conversation.
	f.svc = New(f.cache, store, Config{PublishFor: func(context.Context, chatstate.Message) (cache.Publish, error) { return pub, nil }})
	runCtx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	go f.svc.Run(runCtx)

	if _, err := f.svc.Send(ctx, chatstate.Message{ConversationID: "c1", SenderID: "alice", ClientMessageID: "cm-1", Content: "hello", Type: "text"}, pub); chatstate.ErrorCode(err) != chatstate.EUNAVAILABLE {
		t.Fatalf("send with a lost reply: %v, want unavailable", err)
	}
	next, err := f.svc.Send(ctx, chatstate.Message{ConversationID: "c1", SenderID: "bob", ClientMessageID: "cm-2", Content: "next", Type: "text"}, pub)
	if err != nil || next.Message.Seq != 2 {
		t.Fatalf("next send: %+v %v, want seq 2", next, err)
	}
	if p := f.published(t); len(p) != 2 || !strings.Contains(p[0], `"content":"hello"`) || !strings.Contains(p[1], `"content":"next"`) {
		t.Fatalf("published %q, want hello (settled from the store), then next", p)
	}
}

// failedCommit fails the first group commit, as Redis does when it fails
// over between a batch's store write and its commit.
type failedCommit struct {
	Cache
	fail atomic.Int64
}

func (c *failedCommit) CommitMany(ctx context.Context, reqs []cache.CommitRequest) []cache.CommitResult {
	if c.fail.Add(-1) >= 0 {
		out := make([]cache.CommitResult, len(reqs))
		for i := range out {
			out[i].Err = chatstate.Errorf(chatstate.EUNAVAILABLE, "redis is failing over")
		}
		return out
	}
	return c.Cache.CommitMany(ctx, reqs)
}

// A send stored but not committed (Redis failed between the two) is
// answered unavailable; its resend publishes the stored message once.
func TestCommitFailsAfterTheStoreWrite(t *testing.T) {
	client, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	f := setup(t, client, prefix, cache.Config{SettleTimeout: 200 * time.Millisecond})
	c := &failedCommit{Cache: f.cache}
	c.fail.Store(1)
	f.svc = New(c, f.store, Config{})
	runCtx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	go f.svc.Run(runCtx)

	pub := cache.Publish{Channel: f.ch}
	first := chatstate.Message{ConversationID: "c1", SenderID: "alice", ClientMessageID: "cm-1", Content: "hello", Type: "text"}
	if _, err := f.svc.Send(ctx, first, pub); chatstate.ErrorCode(err) != chatstate.EUNAVAILABLE {
		t.Fatalf("send with a failed commit: %v, want unavailable", err)
	}
	again, err := f.svc.Send(ctx, first, pub)
	if err != nil || again.Message.Seq != 1 || again.Message.Content != "hello" {
		t.Fatalf("resend: %+v %v, want the stored message at seq 1", again, err)
	}
	next, err := f.svc.Send(ctx, chatstate.Message{ConversationID: "c1", SenderID: "alice", ClientMessageID: "cm-2", Content: "next", Type: "text"}, pub)
	if err != nil || next.Message.Seq <= again.Message.Seq {
		t.Fatalf("next send: %+v %v, want a seq above %d", next, err, again.Message.Seq)
	}
	if p := f.published(t); len(p) != 2 || !strings.Contains(p[0], `"content":"hello"`) || !strings.Contains(p[1], `"content":"next"`) {
		t.Fatalf("published %q, want hello once, then next", p)
	}
}
