package storetest

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/chatstate/chatstate"
)

func testInsertBatch(t *testing.T, e *env) {
	conv, sender := e.id("c"), e.id("u")
	var msgs []chatstate.Message
	for seq := int64(1); seq <= 5; seq++ {
		m := e.msg(conv, sender, seq)
		m.Type = []string{"text", "image"}[seq%2]
		msgs = append(msgs, m)
	}
	mustInsert(t, e.s, msgs...)
	wantMessages(t, "MessagesAfter(0)", after(t, e.s, conv, 0, 100), msgs)
	got, err := e.s.MessageByClientID(ctx(t), sender, msgs[2].ClientMessageID)
	if err != nil || got != msgs[2] {
		t.Fatalf("MessageByClientID = %+v, %v; want %+v", got, err, msgs[2])
	}
	_, err = e.s.MessageByClientID(ctx(t), sender, e.id("cm"))
	wantCode(t, "MessageByClientID(unknown)", err, chatstate.ENOTFOUND)
	_, err = e.s.MessageByClientID(ctx(t), e.id("u"), msgs[2].ClientMessageID)
	wantCode(t, "MessageByClientID(other sender)", err, chatstate.ENOTFOUND)
}

func testInsertEmptyBatch(t *testing.T, e *env) {
	for _, batch := range [][]chatstate.Message{nil, {}} {
		errs, err := e.s.InsertMessages(ctx(t), batch)
		if err != nil || len(errs) != 0 {
			t.Fatalf("InsertMessages(%v) = %v, %v; want no results and no error", batch, errs, err)
		}
	}
}

func testDuplicateClientID(t *testing.T, e *env) {
	conv, sender := e.id("c"), e.id("u")
	orig := e.msg(conv, sender, 1)
	mustInsert(t, e.s, orig)

	resend := e.msg(conv, sender, 2)
	resend.ClientMessageID = orig.ClientMessageID
	resend.Content = "changed"
	errs := insert(t, e.s, resend)
	wantIs(t, "resend", errs[0], chatstate.ErrDuplicateMessage)

	got, err := e.s.MessageByClientID(ctx(t), sender, orig.ClientMessageID)
	if err != nil || got != orig {
		t.Fatalf("MessageByClientID = %+v, %v; want the original %+v", got, err, orig)
	}
	wantMessages(t, "history after resend", after(t, e.s, conv, 0, 10), []chatstate.Message{orig})

	// The key is (sender, clientMessageId): another sender may reuse it.
	other := e.msg(conv, e.id("u"), 2)
	other.ClientMessageID = orig.ClientMessageID
	mustInsert(t, e.s, other)
}

func testDuplicateBothKeys(t *testing.T, e *env) {
	conv, sender := e.id("c"), e.id("u")
	orig := e.msg(conv, sender, 1)
	mustInsert(t, e.s, orig)
	again := orig
	again.ID = e.id("m")
	errs := insert(t, e.s, again)
	wantIs(t, "resend with the same seq", errs[0], chatstate.ErrDuplicateMessage)
}

func testSeqTaken(t *testing.T, e *env) {
	conv := e.id("c")
	first := e.msg(conv, e.id("u"), 1)
	mustInsert(t, e.s, first)
	clash := e.msg(conv, e.id("u"), 1)
	errs := insert(t, e.s, clash)
	wantIs(t, "same seq", errs[0], chatstate.ErrSeqTaken)
	if errors.Is(errs[0], chatstate.ErrDuplicateMessage) {
		t.Fatalf("seq conflict reported as a duplicate message")
	}
	wantMessages(t, "history", after(t, e.s, conv, 0, 10), []chatstate.Message{first})
	_, err := e.s.MessageByClientID(ctx(t), clash.SenderID, clash.ClientMessageID)
	wantCode(t, "MessageByClientID(rejected message)", err, chatstate.ENOTFOUND)
}

func testMixedBatch(t *testing.T, e *env) {
	conv, sender := e.id("c"), e.id("u")
	existing := e.msg(conv, sender, 10)
	mustInsert(t, e.s, existing)

	ok1 := e.msg(conv, sender, 1)
	dup := e.msg(conv, sender, 2)
	dup.ClientMessageID = existing.ClientMessageID
	ok2 := e.msg(conv, sender, 3)
	taken := e.msg(conv, sender, 10)
	bad := e.msg("", sender, 4)
	ok3 := e.msg(conv, sender, 5)
	errs := insert(t, e.s, ok1, dup, ok2, taken, bad, ok3)

	for _, i := range []int{0, 2, 5} {
		if errs[i] != nil {
			t.Fatalf("message %d: %v, want stored", i, errs[i])
		}
	}
	wantIs(t, "duplicate in batch", errs[1], chatstate.ErrDuplicateMessage)
	wantIs(t, "seq taken in batch", errs[3], chatstate.ErrSeqTaken)
	wantCode(t, "invalid in batch", errs[4], chatstate.EINVALID)
	wantMessages(t, "history", after(t, e.s, conv, 0, 10), []chatstate.Message{ok1, ok2, ok3, existing})
}

func testConflictsInsideBatch(t *testing.T, e *env) {
	conv, sender := e.id("c"), e.id("u")
	a := e.msg(conv, sender, 1)
	aResend := e.msg(conv, sender, 2)
	aResend.ClientMessageID = a.ClientMessageID
	b := e.msg(conv, sender, 3)
	bClash := e.msg(conv, e.id("u"), 3)
	errs := insert(t, e.s, a, aResend, b, bClash)
	if errs[0] != nil || errs[2] != nil {
		t.Fatalf("first of each pair: %v, %v; want stored", errs[0], errs[2])
	}
	wantIs(t, "resend in the same batch", errs[1], chatstate.ErrDuplicateMessage)
	wantIs(t, "seq clash in the same batch", errs[3], chatstate.ErrSeqTaken)
	wantMessages(t, "history", after(t, e.s, conv, 0, 10), []chatstate.Message{a, b})
}

func testEmptyClientID(t *testing.T, e *env) {
	conv, sender := e.id("c"), e.id("u")
	m1, m2 := e.msg(conv, sender, 1), e.msg(conv, sender, 2)
	m1.ClientMessageID, m2.ClientMessageID = "", ""
	mustInsert(t, e.s, m1, m2)
	m3 := e.msg(conv, sender, 3)
	m3.ClientMessageID = ""
	mustInsert(t, e.s, m3)
	wantMessages(t, "history", after(t, e.s, conv, 0, 10), []chatstate.Message{m1, m2, m3})
	_, err := e.s.MessageByClientID(ctx(t), sender, "")
	wantCode(t, "MessageByClientID(empty)", err, chatstate.EINVALID)
}

func testSameSeqOtherConversation(t *testing.T, e *env) {
	sender := e.id("u")
	a, b := e.msg(e.id("c"), sender, 1), e.msg(e.id("c"), sender, 1)
	mustInsert(t, e.s, a, b)
	c := e.msg(e.id("c"), sender, 1)
	mustInsert(t, e.s, c)
	for _, m := range []chatstate.Message{a, b, c} {
		wantMessages(t, "history of "+m.ConversationID, after(t, e.s, m.ConversationID, 0, 10), []chatstate.Message{m})
	}
}

// history stores seqs 1..n in a shuffled order and returns them by seq.
func (e *env) history(t *testing.T, n int) (string, []chatstate.Message) {
	conv, sender := e.id("c"), e.id("u")
	msgs := make([]chatstate.Message, n)
	for i := range msgs {
		msgs[i] = e.msg(conv, sender, int64(i+1))
	}
	shuffled := append([]chatstate.Message(nil), msgs...)
	rand.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	mustInsert(t, e.s, shuffled[:n/2]...)
	mustInsert(t, e.s, shuffled[n/2:]...)
	return conv, msgs
}

func testMessagesAfter(t *testing.T, e *env) {
	conv, msgs := e.history(t, 10)
	wantMessages(t, "after 3 limit 4", after(t, e.s, conv, 3, 4), msgs[3:7])
	wantSeqs(t, "after 0 limit 1", after(t, e.s, conv, 0, 1), 1)
	wantSeqs(t, "after 8 limit 100", after(t, e.s, conv, 8, 100), 9, 10)
	wantSeqs(t, "after 10", after(t, e.s, conv, 10, 100))
	wantSeqs(t, "after MaxInt64", after(t, e.s, conv, math.MaxInt64, 100))
	wantSeqs(t, "unknown conversation", after(t, e.s, e.id("c"), 0, 100))

	gaps, sender := e.id("c"), e.id("u")
	for _, seq := range []int64{7, 1, 5, 2} {
		mustInsert(t, e.s, e.msg(gaps, sender, seq))
	}
	wantSeqs(t, "gaps after 2", after(t, e.s, gaps, 2, 10), 5, 7)
	wantSeqs(t, "gaps after 0", after(t, e.s, gaps, 0, 10), 1, 2, 5, 7)
}

func testMessagesBefore(t *testing.T, e *env) {
	conv, msgs := e.history(t, 10)
	wantMessages(t, "before 8 limit 3", before(t, e.s, conv, 8, 3), msgs[4:7])
	wantSeqs(t, "before 3 limit 10", before(t, e.s, conv, 3, 10), 1, 2)
	wantSeqs(t, "before 1", before(t, e.s, conv, 1, 10))
	wantSeqs(t, "before MaxInt64 limit 2", before(t, e.s, conv, math.MaxInt64, 2), 9, 10)
	wantSeqs(t, "before 11 limit 100", before(t, e.s, conv, 11, 100), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	wantSeqs(t, "unknown conversation", before(t, e.s, e.id("c"), 100, 10))
}

func testLastSeq(t *testing.T, e *env) {
	conv, sender := e.id("c"), e.id("u")
	last := func() int64 {
		t.Helper()
		n, err := e.s.LastSeq(ctx(t), conv)
		if err != nil {
			t.Fatalf("LastSeq: %v", err)
		}
		return n
	}
	if n := last(); n != 0 {
		t.Fatalf("LastSeq of an empty conversation = %d, want 0", n)
	}
	mustInsert(t, e.s, e.msg(conv, sender, 3), e.msg(conv, sender, 7))
	mustInsert(t, e.s, e.msg(conv, sender, 5))
	if n := last(); n != 7 {
		t.Fatalf("LastSeq = %d, want 7", n)
	}
	// A rejected message does not move it.
	errs := insert(t, e.s, e.msg(conv, sender, 7))
	wantIs(t, "seq 7 again", errs[0], chatstate.ErrSeqTaken)
	mustInsert(t, e.s, e.msg(conv, sender, 1<<40))
	if n := last(); n != 1<<40 {
		t.Fatalf("LastSeq = %d, want %d", n, int64(1<<40))
	}
}

func testContentRoundTrip(t *testing.T, e *env) {
	conv, sender := e.id("c"), e.id("u")
	var big strings.Builder
	for big.Len() < 16<<10-64 {
		big.WriteString("long text é 中文 🎉👩‍👩‍👧‍👦 ")
	}
	contents := []string{
		"",
		"plain ascii",
		"emoji 😀🎉👍🏽 🏳️‍🌈 👩‍👩‍👧‍👦",
		"CJK 你好，世界 こんにちは 안녕하세요",
		"RTL مرحبا שלום",
		"combining e\u0301 a\u030a, zero width \u200b\u200d, BOM \ufeff",
		"control \t\r\n\x01\x7f and NUL \x00 inside",
		`quotes ' " ` + "`" + ` backslash \ percent %_ and '); DROP TABLE messages; --`,
		`{"json":"lookalike","$where":"1"}`,
		"  leading and trailing spaces  ",
		big.String(),
	}
	var msgs []chatstate.Message
	for i, c := range contents {
		m := e.msg(conv, sender, int64(i+1))
		m.Content = c
		msgs = append(msgs, m)
	}
	mustInsert(t, e.s, msgs...)
	got := after(t, e.s, conv, 0, 100)
	if len(got) != len(msgs) {
		t.Fatalf("%d messages back, want %d", len(got), len(msgs))
	}
	for i := range msgs {
		if got[i].Content != msgs[i].Content {
			t.Fatalf("content %d: got %q, want %q", i, truncate(got[i].Content), truncate(msgs[i].Content))
		}
	}
	wantMessages(t, "round trip", got, msgs)
	m, err := e.s.MessageByClientID(ctx(t), sender, msgs[len(msgs)-1].ClientMessageID)
	if err != nil || m != msgs[len(msgs)-1] {
		t.Fatalf("MessageByClientID(big): %v or content differs", err)
	}
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + fmt.Sprintf("...(%d bytes)", len(s))
	}
	return s
}

func testInvalidMessages(t *testing.T, e *env) {
	conv, sender := e.id("c"), e.id("u")
	cases := []struct {
		name string
		edit func(*chatstate.Message)
	}{
		{"empty conversation", func(m *chatstate.Message) { m.ConversationID = "" }},
		{"conversation with space", func(m *chatstate.Message) { m.ConversationID = "a b" }},
		{"conversation with brace", func(m *chatstate.Message) { m.ConversationID = "c{1}" }},
		{"conversation too long", func(m *chatstate.Message) { m.ConversationID = strings.Repeat("c", chatstate.MaxIDLen+1) }},
		{"empty sender", func(m *chatstate.Message) { m.SenderID = "" }},
		{"sender with colon", func(m *chatstate.Message) { m.SenderID = "u:1" }},
		{"empty id", func(m *chatstate.Message) { m.ID = "" }},
		{"id with slash", func(m *chatstate.Message) { m.ID = "m/1" }},
		{"clientMessageId with space", func(m *chatstate.Message) { m.ClientMessageID = "x y" }},
		{"type with space", func(m *chatstate.Message) { m.Type = "te xt" }},
		{"seq 0", func(m *chatstate.Message) { m.Seq = 0 }},
		{"negative seq", func(m *chatstate.Message) { m.Seq = -1 }},
		{"negative createdAt", func(m *chatstate.Message) { m.CreatedAt = -5 }},
		{"invalid utf-8", func(m *chatstate.Message) { m.Content = "bad \xff\xfe" }},
	}
	batch := []chatstate.Message{}
	for i, c := range cases {
		m := e.msg(conv, sender, int64(100+i))
		c.edit(&m)
		batch = append(batch, m)
	}
	good := e.msg(conv, sender, 1)
	batch = append(batch, good)
	errs := insert(t, e.s, batch...)
	for i, c := range cases {
		wantCode(t, c.name, errs[i], chatstate.EINVALID)
	}
	if errs[len(cases)] != nil {
		t.Fatalf("valid message in a batch with invalid ones: %v", errs[len(cases)])
	}
	wantMessages(t, "history", after(t, e.s, conv, 0, 1000), []chatstate.Message{good})
}

func testInvalidMessageReads(t *testing.T, e *env) {
	s, c := e.s, ctx(t)
	conv := e.id("c")
	_, err := s.MessagesAfter(c, "", 0, 10)
	wantCode(t, "MessagesAfter(empty conv)", err, chatstate.EINVALID)
	_, err = s.MessagesAfter(c, "a b", 0, 10)
	wantCode(t, "MessagesAfter(bad conv)", err, chatstate.EINVALID)
	_, err = s.MessagesAfter(c, conv, 0, 0)
	wantCode(t, "MessagesAfter(limit 0)", err, chatstate.EINVALID)
	_, err = s.MessagesAfter(c, conv, -1, 10)
	wantCode(t, "MessagesAfter(afterSeq -1)", err, chatstate.EINVALID)
	_, err = s.MessagesBefore(c, "{c}", 10, 10)
	wantCode(t, "MessagesBefore(bad conv)", err, chatstate.EINVALID)
	_, err = s.MessagesBefore(c, conv, 10, -3)
	wantCode(t, "MessagesBefore(limit -3)", err, chatstate.EINVALID)
	_, err = s.MessageByClientID(c, "", "x")
	wantCode(t, "MessageByClientID(empty sender)", err, chatstate.EINVALID)
	_, err = s.MessageByClientID(c, "u", "x y")
	wantCode(t, "MessageByClientID(bad id)", err, chatstate.EINVALID)
	_, err = s.LastSeq(c, "")
	wantCode(t, "LastSeq(empty)", err, chatstate.EINVALID)
}

func testConcurrentInserts(t *testing.T, e *env) {
	const workers, perWorker = 20, 50
	convs := make([]string, workers)
	for i := range convs {
		convs[i] = e.id("c")
	}
	var wg sync.WaitGroup
	failures := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			sender := e.id("u")
			for seq := int64(1); seq <= perWorker; {
				n := min(int64(1+rand.IntN(8)), perWorker-seq+1)
				var batch []chatstate.Message
				for range n {
					batch = append(batch, e.msg(convs[w], sender, seq))
					seq++
				}
				errs, err := e.s.InsertMessages(ctx(t), batch)
				if err == nil && len(errs) != len(batch) {
					err = fmt.Errorf("%d results for %d messages", len(errs), len(batch))
				}
				if err == nil {
					err = errors.Join(errs...)
				}
				if err != nil {
					failures <- fmt.Errorf("worker %d: %w", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Fatal(err)
	}
	want := make([]int64, perWorker)
	for i := range want {
		want[i] = int64(i + 1)
	}
	for _, conv := range convs {
		wantSeqs(t, conv, after(t, e.s, conv, 0, 1000), want...)
	}
}

// Many senders racing to store the very same message (a resend storm): it is
// stored exactly once and every other attempt is told it is a duplicate.
func testConcurrentSameMessage(t *testing.T, e *env) {
	const racers = 16
	m := e.msg(e.id("c"), e.id("u"), 1)
	results := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			errs, err := e.s.InsertMessages(ctx(t), []chatstate.Message{m})
			if err == nil && len(errs) != 1 {
				err = fmt.Errorf("%d results for 1 message", len(errs))
			} else if err == nil {
				err = errs[0]
			}
			results[i] = err
		})
	}
	wg.Wait()
	stored := 0
	for i, err := range results {
		switch {
		case err == nil:
			stored++
		case errors.Is(err, chatstate.ErrDuplicateMessage):
		default:
			t.Fatalf("racer %d: %v, want nil or ErrDuplicateMessage", i, err)
		}
	}
	if stored != 1 {
		t.Fatalf("stored %d times, want exactly once", stored)
	}
	wantMessages(t, "history", after(t, e.s, m.ConversationID, 0, 10), []chatstate.Message{m})
}

// testSkipMarkers: a skip marker holds its seq against a late write of the
// original (ErrSeqTaken), counts for LastSeq (the counter is restored above
// it) and is left out of history reads, pages included.
func testSkipMarkers(t *testing.T, e *env) {
	conv, sender := e.id("c"), e.id("u")
	m1, m4 := e.msg(conv, sender, 1), e.msg(conv, sender, 4)
	mustInsert(t, e.s, m1, chatstate.SkipMarker(conv, 2, 1000), chatstate.SkipMarker(conv, 3, 1000), m4,
		chatstate.SkipMarker(conv, 5, 1000))
	late := e.msg(conv, sender, 2)
	wantIs(t, "late write of a skipped seq", insert(t, e.s, late)[0], chatstate.ErrSeqTaken)
	wantSeqs(t, "MessagesAfter(0)", after(t, e.s, conv, 0, 100), 1, 4)
	wantSeqs(t, "MessagesAfter(1, limit 1)", after(t, e.s, conv, 1, 1), 4)
	wantSeqs(t, "MessagesAfter(4)", after(t, e.s, conv, 4, 100))
	wantSeqs(t, "MessagesBefore(6)", before(t, e.s, conv, 6, 100), 1, 4)
	wantSeqs(t, "MessagesBefore(4, limit 1)", before(t, e.s, conv, 4, 1), 1)
	if last, err := e.s.LastSeq(ctx(t), conv); err != nil || last != 5 {
		t.Fatalf("LastSeq = %d, %v; want 5 (a marker counts)", last, err)
	}
}
