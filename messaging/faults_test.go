package messaging

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/cache"
	"github.com/chatstate/chatstate/internal/redistest"
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

// faulty is the fixture with its service replaced by one on the cache and
// store that wrap returns (a 200 ms settle timeout), publishing on f.ch, as
// the gateway does (serve.go), what it settles for a send that gave up.
func faulty(t *testing.T, wrap func(Cache, chatstate.MessageStore) (Cache, chatstate.MessageStore)) (*fixture, cache.Publish) {
	t.Helper()
	client, prefix := redistest.Start(t)
	f := setup(t, client, prefix, cache.Config{SettleTimeout: 200 * time.Millisecond})
	pub := cache.Publish{Channel: f.ch}
	c, s := wrap(f.cache, f.store)
	f.svc = New(c, s, Config{PublishFor: func(context.Context, chatstate.Message) (cache.Publish, error) { return pub, nil }})
	runCtx, cancel := context.WithCancel(f.ctx)
	t.Cleanup(cancel)
	go f.svc.Run(runCtx)
	return f, pub
}

func msg(sender, cmid, content string) chatstate.Message {
	return chatstate.Message{ConversationID: "c1", SenderID: sender, ClientMessageID: cmid, Content: content, Type: "text"}
}

// sendFailsThenResend sends hello, which must be refused as unavailable,
// resends it, sends next, and checks that hello is acknowledged at seq 1
// and published once, before next. It returns next.
func sendFailsThenResend(t *testing.T, f *fixture, pub cache.Publish) chatstate.Message {
	t.Helper()
	first := msg("alice", "cm-1", "hello")
	if _, err := f.svc.Send(f.ctx, first, pub); chatstate.ErrorCode(err) != chatstate.EUNAVAILABLE {
		t.Fatalf("first send: %v, want unavailable", err)
	}
	again, err := f.svc.Send(f.ctx, first, pub)
	if err != nil || again.Message.Seq != 1 || again.Message.Content != "hello" {
		t.Fatalf("resend: %+v %v, want the stored message at seq 1", again, err)
	}
	next, err := f.svc.Send(f.ctx, msg("alice", "cm-2", "next"), pub)
	if err != nil || next.Message.Seq <= again.Message.Seq {
		t.Fatalf("next send: %+v %v, want a seq above %d", next, err, again.Message.Seq)
	}
	if p := f.published(t); len(p) != 2 || !strings.Contains(p[0], `"content":"hello"`) || !strings.Contains(p[1], `"content":"next"`) {
		t.Fatalf("published %q, want hello once, then next", p)
	}
	return next.Message
}

// A send whose store write succeeded but reported a failure is answered
// unavailable; the client's resend (same clientMessageId) returns the
// stored message under its seq, it is published once, and the
// conversation goes on. The resend takes a seq of its own before the store
// says the message exists; that seq becomes a gap, which readers skip.
func TestStoreWriteWithALostReply(t *testing.T) {
	f, pub := faulty(t, func(c Cache, s chatstate.MessageStore) (Cache, chatstate.MessageStore) {
		lost := &lostReply{MessageStore: s}
		lost.lose.Store(1)
		return c, lost
	})
	next := sendFailsThenResend(t, f, pub)
	stored, err := f.store.MessagesAfter(f.ctx, "c1", 0, 10)
	if err != nil || len(stored) != 2 || stored[0].ClientMessageID != "cm-1" || stored[1].Seq != next.Seq {
		t.Fatalf("store: %+v %v", stored, err)
	}
}

// The same when the client never resends: the next send settles the seq at
// its timeout, finds the stored message and publishes it, before its own.
func TestStoreWriteWithALostReplyNeverResent(t *testing.T) {
	f, pub := faulty(t, func(c Cache, s chatstate.MessageStore) (Cache, chatstate.MessageStore) {
		lost := &lostReply{MessageStore: s}
		lost.lose.Store(1)
		return c, lost
	})
	if _, err := f.svc.Send(f.ctx, msg("alice", "cm-1", "hello"), pub); chatstate.ErrorCode(err) != chatstate.EUNAVAILABLE {
		t.Fatalf("send with a lost reply: %v, want unavailable", err)
	}
	next, err := f.svc.Send(f.ctx, msg("bob", "cm-2", "next"), pub)
	if err != nil || next.Message.Seq != 2 {
		t.Fatalf("next send: %+v %v, want seq 2", next, err)
	}
	if p := f.published(t); len(p) != 2 || !strings.Contains(p[0], `"content":"hello"`) || !strings.Contains(p[1], `"content":"next"`) {
		t.Fatalf("published %q, want hello (settled from the store), then next", p)
	}
}

// A send stored but not committed (Redis failed between the two) is
// answered unavailable; its resend publishes the stored message once.
func TestCommitFailsAfterTheStoreWrite(t *testing.T) {
	f, pub := faulty(t, func(c Cache, s chatstate.MessageStore) (Cache, chatstate.MessageStore) {
		failed := &failedCommit{Cache: c}
		failed.fail.Store(1)
		return failed, s
	})
	sendFailsThenResend(t, f, pub)
}
