package cache

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
)

// testCache is the behaviour contract of the cache, run against every Redis
// implementation the project supports.
func testCache(t *testing.T, newClient newClientFunc) {
	tests := []struct {
		name string
		fn   func(*testing.T, newClientFunc)
	}{
		{"MessagesBasic", testMessagesBasic},
		{"MessagesCap", testMessagesCap},
		{"MessagesTTL", testMessagesTTL},
		{"MessagesConcurrentSeq", testMessagesConcurrentSeq},
		{"MessagesIdempotent", testMessagesIdempotent},
		{"MessagesConcurrentResend", testConcurrentResend},
		{"MessagesExplicitSeq", testMessagesExplicitSeq},
		{"MessagesPublish", testMessagesPublish},
		{"DedupeWindow", testDedupeWindow},
		{"SettleTimeout", testSettleTimeout},
		{"TimelineApply", testTimelineApply},
		{"Reserve", testReserve},
		{"ReadsAndUnread", testReadsAndUnread},
		{"UnreadLimit", testUnreadLimit},
		{"UnreadRuns", testUnreadRuns},
		{"SummaryReadsCachedCopy", testSummaryReadsCachedCopy},
		{"ConversationList", testConversationList},
		{"SessionsBasic", testSessionsBasic},
		{"SessionsExpiry", testSessionsExpiry},
		{"SessionsActivityExtends", testSessionsActivityExtends},
		{"SessionsSweepAndScan", testSessionsSweepAndScan},
		{"SessionsEviction", testSessionsEviction},
		{"Friends", testFriends},
		{"Notifications", testNotifications},
		{"KnownDevices", testKnownDevices},
		{"RateLimitExact", testRateLimitExact},
		{"RateLimitConcurrent", testRateLimitConcurrent},
		{"SecurityLog", testSecurityLog},
		{"BadInput", testBadInput},
		{"ScriptFlush", testScriptFlush},
		{"Stats", testStats},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, newClient) })
	}
}

func testMessagesBasic(t *testing.T, nc newClientFunc) {
	e := newEnv(t, nc, Config{})
	before := e.serverNow()
	var stored []chatstate.Message
	for i := 1; i <= 3; i++ {
		m, dup, err := e.c.AddMessage(e.ctx, chatstate.Message{ConversationID: "c1", SenderID: "alice", Content: fmt.Sprintf("hi <%d> \"&\" ünï", i)})
		must(t, err)
		if dup || m.Seq != int64(i) || m.ID == "" || m.Type != "text" || m.CreatedAt < before || m.ConversationID != "c1" {
			t.Fatalf("message %d: %+v dup=%v", i, m, dup)
		}
		stored = append(stored, m)
	}
	got, err := e.c.Messages(e.ctx, "c1", 0, 0)
	must(t, err)
	if len(got) != 3 {
		t.Fatalf("got %d messages", len(got))
	}
	for i := range got {
		if got[i] != stored[i] {
			t.Fatalf("message %d: got %+v, want %+v", i, got[i], stored[i])
		}
	}
	got, err = e.c.Messages(e.ctx, "c1", 1, 1)
	must(t, err)
	if len(got) != 1 || got[0].Seq != 2 {
		t.Fatalf("after 1 limit 1: %+v", got)
	}
	got, err = e.c.Messages(e.ctx, "other", 0, 10)
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("unknown conversation: %+v", got)
	}
	// Given id and createdAt are kept.
	m, _, err := e.c.AddMessage(e.ctx, chatstate.Message{ID: "m-1", ConversationID: "c1", SenderID: "bob", Content: "x", Type: "image", CreatedAt: 12345})
	must(t, err)
	if m.ID != "m-1" || m.CreatedAt != 12345 || m.Type != "image" || m.Seq != 4 {
		t.Fatalf("%+v", m)
	}
	if n, err := e.c.LastSeq(e.ctx, "c1"); err != nil || n != 4 {
		t.Fatalf("LastSeq = %d, %v", n, err)
	}
	if n, err := e.c.LastSeq(e.ctx, "never"); err != nil || n != 0 {
		t.Fatalf("LastSeq of unknown = %d, %v", n, err)
	}
}

func testMessagesCap(t *testing.T, nc newClientFunc) {
	e := newEnv(t, nc, Config{})
	for i := 0; i < 101; i++ {
		_, _, err := e.c.AddMessage(e.ctx, chatstate.Message{ConversationID: "c", SenderID: "u", Content: "m"})
		must(t, err)
	}
	if n := e.int(e.client.B().Zcard().Key(e.c.keys.Messages("c")).Build()); n != 100 {
		t.Fatalf("zcard = %d, want 100", n)
	}
	got, err := e.c.Messages(e.ctx, "c", 0, 1000)
	must(t, err)
	if len(got) != 100 || got[0].Seq != 2 || got[99].Seq != 101 {
		t.Fatalf("got %d messages, first %d", len(got), got[0].Seq)
	}
}

func testMessagesTTL(t *testing.T, nc newClientFunc) {
	e := newEnv(t, nc, Config{MessageTTL: 800 * time.Millisecond})
	_, _, err := e.c.AddMessage(e.ctx, chatstate.Message{ConversationID: "c", SenderID: "u", Content: "a", ClientMessageID: "k1"})
	must(t, err)
	key := e.c.keys.Messages("c")
	first := e.pttl(key)
	if first <= 0 || first > 800 {
		t.Fatalf("pttl = %d", first)
	}
	for _, k := range []string{e.c.keys.Dedupe("c")} {
		if p := e.pttl(k); p <= 0 || p > 800 {
			t.Fatalf("%s pttl = %d", k, p)
		}
	}
	if p := e.pttl(e.c.keys.Seq("c")); p != -1 {
		t.Fatalf("seq counter must not expire, pttl = %d", p)
	}
	eventually(t, 5*time.Second, "pttl to drop", func() bool { return e.pttl(key) < first-200 })
	_, _, err = e.c.AddMessage(e.ctx, chatstate.Message{ConversationID: "c", SenderID: "u", Content: "b"})
	must(t, err)
	if p := e.pttl(key); p < first-100 {
		t.Fatalf("write did not refresh the TTL: %d", p)
	}
	eventually(t, 5*time.Second, "messages to expire", func() bool {
		got, err := e.c.Messages(e.ctx, "c", 0, 0)
		must(t, err)
		return len(got) == 0
	})
	// The counter survives the cache, so seq never goes back.
	m, _, err := e.c.AddMessage(e.ctx, chatstate.Message{ConversationID: "c", SenderID: "u", Content: "c", ClientMessageID: "k1"})
	must(t, err)
	if m.Seq != 3 {
		t.Fatalf("seq after expiry = %d, want 3 (and k1 forgotten)", m.Seq)
	}
}

func testMessagesConcurrentSeq(t *testing.T, nc newClientFunc) {
	e := newEnv(t, nc, Config{})
	const n = 50
	var wg sync.WaitGroup
	seqs := make([]int64, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			m, _, err := e.c.AddMessage(e.ctx, chatstate.Message{ConversationID: "c", SenderID: fmt.Sprintf("u%d", i), Content: "x"})
			seqs[i], errs[i] = m.Seq, err
		}(i)
	}
	wg.Wait()
	for _, err := range errs {
		must(t, err)
	}
	sort.Slice(seqs, func(i, j int) bool { return seqs[i] < seqs[j] })
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Fatalf("seqs not 1..%d without gaps or repeats: %v", n, seqs)
		}
	}
	got, err := e.c.Messages(e.ctx, "c", 0, 0)
	must(t, err)
	if len(got) != n {
		t.Fatalf("got %d", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i].Seq <= got[i-1].Seq {
			t.Fatalf("not strictly increasing at %d: %d, %d", i, got[i-1].Seq, got[i].Seq)
		}
	}
}

func testMessagesIdempotent(t *testing.T, nc newClientFunc) {
	e := newEnv(t, nc, Config{})
	first, dup, err := e.c.AddMessage(e.ctx, chatstate.Message{ConversationID: "c", SenderID: "alice", Content: "hello", ClientMessageID: "cm-1"})
	must(t, err)
	if dup {
		t.Fatal("first send reported duplicate")
	}
	again, dup, err := e.c.AddMessage(e.ctx, chatstate.Message{ConversationID: "c", SenderID: "alice", Content: "changed", ClientMessageID: "cm-1"})
	must(t, err)
	if !dup || again != first {
		t.Fatalf("resend: dup=%v %+v, want %+v", dup, again, first)
	}
	if n := e.int(e.client.B().Zcard().Key(e.c.keys.Messages("c")).Build()); n != 1 {
		t.Fatalf("resend added a member: zcard %d", n)
	}
	if n, _ := e.c.LastSeq(e.ctx, "c"); n != 1 {
		t.Fatalf("resend moved the counter to %d", n)
	}
	// The same client id from another sender is another message.
	other, dup, err := e.c.AddMessage(e.ctx, chatstate.Message{ConversationID: "c", SenderID: "bob", Content: "hi", ClientMessageID: "cm-1"})
	must(t, err)
	if dup || other.Seq != 2 {
		t.Fatalf("other sender: dup=%v %+v", dup, other)
	}
}

func testMessagesExplicitSeq(t *testing.T, nc newClientFunc) {
	e := newEnv(t, nc, Config{DedupeLimit: 2})
	m, _, err := e.c.AddMessage(e.ctx, chatstate.Message{ConversationID: "c", SenderID: "u", Content: "a", Seq: 10})
	must(t, err)
	if m.Seq != 10 {
		t.Fatalf("seq %d", m.Seq)
	}
	m, _, err = e.c.AddMessage(e.ctx, chatstate.Message{ConversationID: "c", SenderID: "u", Content: "b"})
	must(t, err)
	if m.Seq != 11 {
		t.Fatalf("next seq %d, want 11", m.Seq)
	}
	// An explicit seq below the counter is stored as given, replacing the
	// cached message of that seq, and leaves the counter alone.
	_, _, err = e.c.AddMessage(e.ctx, chatstate.Message{ConversationID: "c", SenderID: "u", Content: "a2", Seq: 10})
	must(t, err)
	got, err := e.c.Messages(e.ctx, "c", 0, 0)
	must(t, err)
	if len(got) != 2 || got[0].Content != "a2" || got[1].Seq != 11 {
		t.Fatalf("%+v", got)
	}
	if n, err := e.c.SetSeqFloor(e.ctx, "c", 20); err != nil || n != 20 {
		t.Fatalf("SetSeqFloor(20) = %d, %v", n, err)
	}
	if n, err := e.c.SetSeqFloor(e.ctx, "c", 5); err != nil || n != 20 {
		t.Fatalf("SetSeqFloor(5) = %d, %v (must not lower)", n, err)
	}
	m, _, err = e.c.AddMessage(e.ctx, chatstate.Message{ConversationID: "c", SenderID: "u", Content: "c"})
	must(t, err)
	if m.Seq != 21 {
		t.Fatalf("after floor: seq %d", m.Seq)
	}
	// DedupeLimit 2: a third client id pushes out the first.
	for _, id := range []string{"k1", "k2", "k3"} {
		_, _, err := e.c.AddMessage(e.ctx, chatstate.Message{ConversationID: "c", SenderID: "u", Content: id, ClientMessageID: id})
		must(t, err)
	}
	if n := e.int(e.client.B().Zcard().Key(e.c.keys.Dedupe("c")).Build()); n != 2 {
		t.Fatalf("dedupe index has %d entries, want 2", n)
	}
	if _, dup, err := e.c.AddMessage(e.ctx, chatstate.Message{ConversationID: "c", SenderID: "u", Content: "x", ClientMessageID: "k1"}); err != nil || dup {
		t.Fatalf("k1 should be forgotten: dup=%v %v", dup, err)
	}
	if _, dup, err := e.c.AddMessage(e.ctx, chatstate.Message{ConversationID: "c", SenderID: "u", Content: "x", ClientMessageID: "k3"}); err != nil || !dup {
		t.Fatalf("k3 should be remembered: dup=%v %v", dup, err)
	}
}

func testSessionsBasic(t *testing.T, nc newClientFunc) {
	e := newEnv(t, nc, Config{})
	before := e.serverNow()
	s, err := e.c.CreateSession(e.ctx, chatstate.Session{UserID: "alice", DeviceID: "phone", Data: map[string]string{"os": "ios|17"}})
	must(t, err)
	if s.UserID != "alice" || s.DeviceID != "phone" || s.Data["os"] != "ios|17" || s.CreatedAt < before ||
		s.LastActivity != s.CreatedAt || s.ExpiresAt != s.CreatedAt+time.Hour.Milliseconds() {
		t.Fatalf("%+v", s)
	}
	_, err = e.c.CreateSession(e.ctx, chatstate.Session{UserID: "alice", DeviceID: "laptop"})
	must(t, err)
	got, err := e.c.Session(e.ctx, "alice", "phone")
	must(t, err)
	if got.DeviceID != "phone" || got.Data["os"] != "ios|17" || got.ExpiresAt != s.ExpiresAt {
		t.Fatalf("%+v", got)
	}
	list, err := e.c.Sessions(e.ctx, "alice")
	must(t, err)
	if len(list) != 2 || list[0].DeviceID != "laptop" || list[1].DeviceID != "phone" {
		t.Fatalf("%+v", list)
	}
	if p := e.pttl(e.c.keys.Sessions("alice")); p <= 0 || p > time.Hour.Milliseconds() {
		t.Fatalf("pttl %d", p)
	}
	must(t, e.c.DeleteSession(e.ctx, "alice", "phone"))
	must(t, e.c.DeleteSession(e.ctx, "alice", "phone")) // idempotent
	_, err = e.c.Session(e.ctx, "alice", "phone")
	wantCode(t, err, chatstate.ENOTFOUND)
	_, err = e.c.UpdateSessionActivity(e.ctx, "alice", "phone")
	wantCode(t, err, chatstate.ENOTFOUND)
	list, err = e.c.Sessions(e.ctx, "nobody")
	must(t, err)
	if len(list) != 0 {
		t.Fatalf("%+v", list)
	}
}

func testSessionsExpiry(t *testing.T, nc newClientFunc) {
	e := newEnv(t, nc, Config{SessionTTL: 400 * time.Millisecond})
	s, err := e.c.CreateSession(e.ctx, chatstate.Session{UserID: "u", DeviceID: "d1"})
	must(t, err)
	// Poll the listing until the session disappears; whenever it is listed
	// it must not be past its expiry by Redis' clock.
	eventually(t, 5*time.Second, "session to leave the listing", func() bool {
		before := e.serverNow()
		list, err := e.c.Sessions(e.ctx, "u")
		must(t, err)
		for _, l := range list {
			if l.ExpiresAt <= before {
				t.Fatalf("listed an expired session: %+v at %d", l, before)
			}
		}
		return len(list) == 0
	})
	if e.serverNow() < s.ExpiresAt {
		t.Fatal("session left the listing before it expired")
	}
	_, err = e.c.Session(e.ctx, "u", "d1")
	wantCode(t, err, chatstate.ENOTFOUND)
	_, err = e.c.UpdateSessionActivity(e.ctx, "u", "d1")
	wantCode(t, err, chatstate.ENOTFOUND)
}

func testSessionsActivityExtends(t *testing.T, nc newClientFunc) {
	e := newEnv(t, nc, Config{SessionTTL: 500 * time.Millisecond})
	s, err := e.c.CreateSession(e.ctx, chatstate.Session{UserID: "u", DeviceID: "d1", Data: map[string]string{"k": "v"}})
	must(t, err)
	_, err = e.c.CreateSession(e.ctx, chatstate.Session{UserID: "u", DeviceID: "idle"})
	must(t, err)
	// Keep d1 active well past its first expiry.
	last := s
	for e.serverNow() < s.ExpiresAt+700 {
		e.waitServerPast(last.LastActivity + 100)
		u, err := e.c.UpdateSessionActivity(e.ctx, "u", "d1")
		must(t, err)
		if u.CreatedAt != s.CreatedAt || u.LastActivity <= last.LastActivity || u.ExpiresAt != u.LastActivity+500 || u.Data["k"] != "v" {
			t.Fatalf("after activity: %+v (before %+v)", u, last)
		}
		if p := e.pttl(e.c.keys.Sessions("u")); p < u.ExpiresAt-e.serverNow()-50 {
			t.Fatalf("key expires before the session: pttl %d, session %+v", p, u)
		}
		last = u
	}
	list, err := e.c.Sessions(e.ctx, "u")
	must(t, err)
	if len(list) != 1 || list[0].DeviceID != "d1" {
		t.Fatalf("want only the active session, got %+v", list)
	}
}

func testSessionsSweepAndScan(t *testing.T, nc newClientFunc) {
	e := newEnv(t, nc, Config{SessionTTL: 300 * time.Millisecond})
	long := New(e.client, Config{KeyPrefix: e.prefix, SessionTTL: time.Hour})
	var expiry int64
	for _, u := range []string{"u1", "u2", "u3"} {
		s, err := e.c.CreateSession(e.ctx, chatstate.Session{UserID: u, DeviceID: "short"})
		must(t, err)
		expiry = max(expiry, s.ExpiresAt)
	}
	_, err := long.CreateSession(e.ctx, chatstate.Session{UserID: "u1", DeviceID: "long"})
	must(t, err)
	// Another prefix is not ours to see.
	other := New(e.client, Config{KeyPrefix: e.prefix + "x*:"})
	_, err = other.CreateSession(e.ctx, chatstate.Session{UserID: "stranger", DeviceID: "d"})
	must(t, err)

	seen := map[string]bool{}
	var cursor uint64
	for i := 0; ; i++ {
		users, next, err := e.c.SessionUsers(e.ctx, cursor, 10)
		must(t, err)
		for _, u := range users {
			seen[u] = true
		}
		if cursor = next; cursor == 0 || i > 100000 {
			break
		}
	}
	if len(seen) != 3 || !seen["u1"] || !seen["u2"] || !seen["u3"] {
		t.Fatalf("scan found %v", seen)
	}

	e.waitServerPast(expiry)
	// u1's hash lives on for its long session, so the sweep removes the
	// expired one; u2's and u3's hashes expired whole with their last session.
	for u, want := range map[string]int{"u1": 1, "u2": 0, "u3": 0} {
		n, err := e.c.SweepSessions(e.ctx, u)
		must(t, err)
		if n != want {
			t.Fatalf("sweep %s removed %d, want %d", u, n, want)
		}
	}
	if n, _ := e.c.SweepSessions(e.ctx, "u1"); n != 0 {
		t.Fatalf("second sweep removed %d", n)
	}
	list, err := e.c.Sessions(e.ctx, "u1")
	must(t, err)
	if len(list) != 1 || list[0].DeviceID != "long" {
		t.Fatalf("%+v", list)
	}
	if n := e.int(e.client.B().Exists().Key(e.c.keys.Sessions("u2")).Build()); n != 0 {
		t.Fatal("an emptied sessions hash should be gone")
	}
}

func testSessionsEviction(t *testing.T, nc newClientFunc) {
	e := newEnv(t, nc, Config{MaxSessions: 2})
	s1, err := e.c.CreateSession(e.ctx, chatstate.Session{UserID: "u", DeviceID: "d1"})
	must(t, err)
	s2, err := e.c.CreateSession(e.ctx, chatstate.Session{UserID: "u", DeviceID: "d2"})
	must(t, err)
	// Make d1 the most recently active (by Redis' ms clock).
	e.waitServerPast(max(s1.LastActivity, s2.LastActivity))
	_, err = e.c.UpdateSessionActivity(e.ctx, "u", "d1")
	must(t, err)
	_, err = e.c.CreateSession(e.ctx, chatstate.Session{UserID: "u", DeviceID: "d3"})
	must(t, err)
	list, err := e.c.Sessions(e.ctx, "u")
	must(t, err)
	var ids []string
	for _, s := range list {
		ids = append(ids, s.DeviceID)
	}
	if strings.Join(ids, ",") != "d1,d3" {
		t.Fatalf("after eviction: %v", ids)
	}
	// Replacing an existing device does not evict anyone.
	_, err = e.c.CreateSession(e.ctx, chatstate.Session{UserID: "u", DeviceID: "d3"})
	must(t, err)
	if list, _ := e.c.Sessions(e.ctx, "u"); len(list) != 2 {
		t.Fatalf("%+v", list)
	}
}
