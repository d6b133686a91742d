// Package storetest is the contract every chatstate.Store implementation must
// pass (sqlitestore, mongostore). A store package runs it from a test:
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, l chatstate.StoreLimits) (chatstate.Store, error) {
//			return open(t, Config{StoreLimits: l})
//		})
//	}
//
// Semantics the contract pins down beyond the interface comments in store.go:
//
//   - Every id (conversation, sender, message id, clientMessageId, user,
//     member, friend, device) is checked with chatstate.ValidateID; a bad one
//     is a *chatstate.Error with code "invalid". Message Type is an id too.
//
//   - InsertMessages reports a bad message in its own slot of the result
//     (code invalid or too_large) and still stores the others. Seq must be
//     >= 1, CreatedAt >= 0, Content valid UTF-8. An empty ClientMessageID
//     means "no idempotency key": such messages never conflict with each
//     other. When a message conflicts on both unique keys, ErrDuplicateMessage
//     wins (the resend case). Within one batch, messages are applied in order,
//     so the later of two conflicting messages gets the error.
//
//   - MessagesAfter / MessagesBefore / MessageByClientID / LastSeq on an
//     unknown conversation or sender return empty / ENOTFOUND / 0, not an
//     error. limit < 1 and afterSeq < 0 are invalid.
//
//   - CreateConversation drops duplicate members keeping the first
//     occurrence's order, fills CreatedAt with the current time when it is 0,
//     and Conversation returns the members in that order.
//
//   - Timeline entries (edit, delete, reaction, members) are stored and read
//     like messages; a stored edit, delete or reaction also changes its
//     target, and every read shows the state of applying the target's
//     entries in seq order (chatstate.Message.Apply) whatever order they
//     were stored in. UpdateMembers returns only the effective change and
//     appends added members in order.
//
//   - SetFriends drops duplicates keeping order; nil and empty both clear.
//
//   - DeviceTokens' order is unspecified. Platform must be "fcm" or "apns",
//     Token non-empty without whitespace. UpdatedAt 0 is filled with the
//     current time. RemoveDeviceToken of an unknown device is not an error.
//
//   - SetReadPosition is a monotonic max per (conversation, user); it does
//     not check membership. ConversationActivity ignores edit, delete and
//     reaction entries and skip markers, falls back to CreatedAt, and breaks
//     ties by id.
//
//   - Limits (chatstate.StoreLimits): each has its documented default and
//     behaviour; over MaxPageSize, MaxMembers, MaxBatch, MaxFriends,
//     MaxContentBytes or MaxTokenBytes is too_large with nothing stored; a
//     new device over MaxDeviceTokens evicts the least recently updated
//     token; MaxConversationsOf caps ConversationsOf and ConversationActivity
//     to the same smallest ids; a negative limit fails the open with invalid.
//
// newStore opens a store with the given limits (zero: the defaults). Run
// calls it for the main store, shared by all subtests (every subtest uses
// ids unique to this run, so a persistent database can be reused across
// runs), for one with small limits (Limits*), and with a negative limit,
// which must fail. Run closes the stores when the test ends, failing on a
// Close error.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
)

// Run runs the whole contract against the store newStore returns.
func Run(t *testing.T, newStore func(t *testing.T, limits chatstate.StoreLimits) (chatstate.Store, error)) {
	open := func(l chatstate.StoreLimits) chatstate.Store {
		s, err := newStore(t, l)
		if err != nil {
			t.Fatalf("open a store with limits %+v: %v", l, err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := s.Close(ctx); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		return s
	}
	e := &env{s: open(chatstate.StoreLimits{}), small: open(smallLimits), newStore: newStore, run: fmt.Sprintf("%x", time.Now().UnixNano())}
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"InsertBatch", testInsertBatch},
		{"InsertEmptyBatch", testInsertEmptyBatch},
		{"DuplicateClientMessageID", testDuplicateClientID},
		{"DuplicateBothKeys", testDuplicateBothKeys},
		{"SeqTaken", testSeqTaken},
		{"MixedBatch", testMixedBatch},
		{"ConflictsInsideBatch", testConflictsInsideBatch},
		{"EmptyClientMessageID", testEmptyClientID},
		{"SameSeqOtherConversation", testSameSeqOtherConversation},
		{"MessagesAfter", testMessagesAfter},
		{"MessagesBefore", testMessagesBefore},
		{"LastSeq", testLastSeq},
		{"SkipMarkers", testSkipMarkers},
		{"TimelineEdit", testTimelineEdit},
		{"TimelineDelete", testTimelineDelete},
		{"TimelineReactions", testTimelineReactions},
		{"TimelineMembersEntry", testTimelineMembersEntry},
		{"UpdateMembers", testUpdateMembers},
		{"ConcurrentUpdateMembers", testConcurrentUpdateMembers},
		{"ContentRoundTrip", testContentRoundTrip},
		{"InvalidMessages", testInvalidMessages},
		{"InvalidMessageReads", testInvalidMessageReads},
		{"ConcurrentInserts", testConcurrentInserts},
		{"ConcurrentSameMessage", testConcurrentSameMessage},
		{"ConversationCreateGet", testConversationCreateGet},
		{"ConversationCreatedAtDefault", testConversationCreatedAtDefault},
		{"ConversationNotFound", testConversationNotFound},
		{"IsMember", testIsMember},
		{"ConversationsOf", testConversationsOf},
		{"InvalidConversations", testInvalidConversations},
		{"Friends", testFriends},
		{"LastSeen", testLastSeen},
		{"DeviceTokens", testDeviceTokens},
		{"InvalidUsers", testInvalidUsers},
		{"LimitsDefault", testLimitsDefault},
		{"LimitsNegative", testLimitsNegative},
		{"LimitPageSize", testLimitPageSize},
		{"LimitMembers", testLimitMembers},
		{"LimitDeviceTokens", testLimitDeviceTokens},
		{"LimitConversationsOf", testLimitConversationsOf},
		{"LimitConversationActivity", testLimitConversationActivity},
		{"LimitsOthers", testLimitsOthers},
		{"ReadPositions", testReadPositions},
		{"ConversationActivity", testConversationActivity},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, e) })
	}
}

type env struct {
	s     chatstate.Store // default limits
	small chatstate.Store // smallLimits
	// newStore is Run's argument, for the open that must fail.
	newStore func(t *testing.T, limits chatstate.StoreLimits) (chatstate.Store, error)
	run      string
	n        atomic.Int64
}

// id returns an id unique to this run, e.g. "conv-1a2b3c-17".
func (e *env) id(kind string) string {
	return fmt.Sprintf("%s-%s-%d", kind, e.run, e.n.Add(1))
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// msg builds a valid message; the caller adjusts fields.
func (e *env) msg(conv, sender string, seq int64) chatstate.Message {
	return chatstate.Message{
		ID:              e.id("m"),
		ConversationID:  conv,
		SenderID:        sender,
		Content:         fmt.Sprintf("hello %d", seq),
		Type:            "text",
		CreatedAt:       1700000000000 + seq,
		Seq:             seq,
		ClientMessageID: e.id("cm"),
	}
}

// insert stores msgs and returns the per-message results, failing on a batch
// error or a result slice of the wrong length.
func insert(t *testing.T, s chatstate.Store, msgs ...chatstate.Message) []error {
	t.Helper()
	errs, err := s.InsertMessages(ctx(t), msgs)
	if err != nil {
		t.Fatalf("InsertMessages: batch error %v", err)
	}
	if len(errs) != len(msgs) {
		t.Fatalf("InsertMessages: %d results for %d messages", len(errs), len(msgs))
	}
	return errs
}

// mustInsert stores msgs and fails unless every one was stored.
func mustInsert(t *testing.T, s chatstate.Store, msgs ...chatstate.Message) {
	t.Helper()
	for i, err := range insert(t, s, msgs...) {
		if err != nil {
			t.Fatalf("InsertMessages: message %d (seq %d): %v", i, msgs[i].Seq, err)
		}
	}
}

func after(t *testing.T, s chatstate.Store, conv string, afterSeq int64, limit int) []chatstate.Message {
	t.Helper()
	got, err := s.MessagesAfter(ctx(t), conv, afterSeq, limit)
	if err != nil {
		t.Fatalf("MessagesAfter(%s, %d, %d): %v", conv, afterSeq, limit, err)
	}
	return got
}

func before(t *testing.T, s chatstate.Store, conv string, beforeSeq int64, limit int) []chatstate.Message {
	t.Helper()
	got, err := s.MessagesBefore(ctx(t), conv, beforeSeq, limit)
	if err != nil {
		t.Fatalf("MessagesBefore(%s, %d, %d): %v", conv, beforeSeq, limit, err)
	}
	return got
}

func seqs(msgs []chatstate.Message) []int64 {
	out := make([]int64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Seq
	}
	return out
}

func wantSeqs(t *testing.T, what string, got []chatstate.Message, want ...int64) {
	t.Helper()
	if want == nil {
		want = []int64{}
	}
	if g := seqs(got); !slices.Equal(g, want) {
		t.Fatalf("%s: seqs %v, want %v", what, g, want)
	}
}

func wantMessages(t *testing.T, what string, got, want []chatstate.Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d messages (seqs %v), want %d (seqs %v)", what, len(got), seqs(got), len(want), seqs(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: message %d\n got %+v\nwant %+v", what, i, got[i], want[i])
		}
	}
}

// wantCode fails unless err is a *chatstate.Error with the given code.
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	var ce *chatstate.Error
	if !errors.As(err, &ce) {
		t.Fatalf("%s: error %v (%T), want a *chatstate.Error with code %q", what, err, err, code)
	}
	if ce.Code != code {
		t.Fatalf("%s: code %q (%v), want %q", what, ce.Code, err, code)
	}
}

func wantIs(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want %v", what, err, target)
	}
	wantCode(t, what, err, chatstate.ECONFLICT)
}

func sortedStrings(s []string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return out
}
