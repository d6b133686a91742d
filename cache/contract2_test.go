package cache

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
)

func testFriends(t *testing.T, nc newClientFunc) {
	e := newEnv(t, nc, Config{MaxFriends: 3})
	if f, found, err := e.c.FriendList(e.ctx, "u"); err != nil || found || f != nil {
		t.Fatalf("miss: %v %v %v", f, found, err)
	}
	if _, found, err := e.c.IsFriend(e.ctx, "u", "a"); err != nil || found {
		t.Fatalf("IsFriend on miss: found=%v %v", found, err)
	}
	must(t, e.c.CacheFriendList(e.ctx, "u", nil))
	if f, found, err := e.c.FriendList(e.ctx, "u"); err != nil || !found || len(f) != 0 {
		t.Fatalf("empty hit: %v %v %v", f, found, err)
	}
	must(t, e.c.CacheFriendList(e.ctx, "u", []string{"carol", "alice", "bob"}))
	f, found, err := e.c.FriendList(e.ctx, "u")
	if err != nil || !found || strings.Join(f, ",") != "alice,bob,carol" {
		t.Fatalf("hit: %v %v %v", f, found, err)
	}
	if ok, found, err := e.c.IsFriend(e.ctx, "u", "bob"); err != nil || !found || !ok {
		t.Fatalf("IsFriend bob: %v %v %v", ok, found, err)
	}
	if ok, found, err := e.c.IsFriend(e.ctx, "u", "mallory"); err != nil || !found || ok {
		t.Fatalf("IsFriend mallory: %v %v %v", ok, found, err)
	}
	if p := e.pttl(e.c.keys.Friends("u")); p <= 0 || p > (2*time.Hour).Milliseconds() {
		t.Fatalf("pttl %d", p)
	}
	// Replacing drops old members.
	must(t, e.c.CacheFriendList(e.ctx, "u", []string{"dave"}))
	if f, _, _ := e.c.FriendList(e.ctx, "u"); strings.Join(f, ",") != "dave" {
		t.Fatalf("replaced: %v", f)
	}
	wantCode(t, e.c.CacheFriendList(e.ctx, "u", []string{"a", "b", "c", "d"}), chatstate.ETOOLARGE)
	wantCode(t, e.c.CacheFriendList(e.ctx, "u", []string{"ok", "bad id"}), chatstate.EINVALID)
	wantCode(t, e.c.CacheFriendList(e.ctx, "u", []string{friendsSentinel}), chatstate.EINVALID)
	must(t, e.c.InvalidateFriendList(e.ctx, "u"))
	if _, found, err := e.c.FriendList(e.ctx, "u"); err != nil || found {
		t.Fatalf("after invalidate: found=%v %v", found, err)
	}
	// A fill racing with the write that invalidated is refused for a moment.
	must(t, e.c.CacheFriendList(e.ctx, "u", []string{"old"}))
	if f, found, _ := e.c.FriendList(e.ctx, "u"); found {
		t.Fatalf("stale fill accepted right after invalidate: %v", f)
	}
	if ok, found, _ := e.c.IsFriend(e.ctx, "u", "old"); found || ok {
		t.Fatal("IsFriend must report a miss while invalidated")
	}
	short := New(e.client, Config{KeyPrefix: e.prefix, FriendsTTL: 300 * time.Millisecond})
	must(t, short.CacheFriendList(e.ctx, "v", []string{"x"}))
	eventually(t, 5*time.Second, "friend list to expire", func() bool {
		_, found, err := short.FriendList(e.ctx, "v")
		must(t, err)
		return !found
	})
}

func testNotifications(t *testing.T, nc newClientFunc) {
	e := newEnv(t, nc, Config{NotificationLimit: 3})
	var sent []chatstate.Notification
	for i := 0; i < 5; i++ {
		p := chatstate.PriorityNormal
		if i%2 == 0 {
			p = chatstate.PriorityHigh
		}
		if i == 1 {
			p = "" // empty means normal
		}
		n, err := e.c.AddNotification(e.ctx, chatstate.Notification{UserID: "u", Priority: p, Title: fmt.Sprintf("t%d", i), Data: map[string]string{"i": fmt.Sprint(i)}})
		must(t, err)
		if n.ID == "" || n.CreatedAt == 0 || n.UserID != "u" || (p == "" && n.Priority != chatstate.PriorityNormal) {
			t.Fatalf("%+v", n)
		}
		sent = append(sent, n)
	}
	got, err := e.c.Notifications(e.ctx, "u", 0)
	must(t, err)
	if len(got) != 3 || got[0].ID != sent[4].ID || got[1].ID != sent[3].ID || got[2].ID != sent[2].ID {
		t.Fatalf("want the 3 newest first, got %+v", got)
	}
	if got[0].Data["i"] != "4" {
		t.Fatalf("%+v", got[0])
	}
	if got, _ := e.c.Notifications(e.ctx, "u", 1); len(got) != 1 || got[0].ID != sent[4].ID {
		t.Fatalf("limit 1: %+v", got)
	}
	if p := e.pttl(e.c.keys.Notifications("u")); p <= 0 || p > (7*24*time.Hour).Milliseconds() {
		t.Fatalf("pttl %d", p)
	}
	_, err = e.c.AddNotification(e.ctx, chatstate.Notification{UserID: "u", Priority: "urgent"})
	wantCode(t, err, chatstate.EINVALID)
	_, err = e.c.AddNotification(e.ctx, chatstate.Notification{UserID: "u", Body: strings.Repeat("x", 5000)})
	wantCode(t, err, chatstate.ETOOLARGE)
}

func testRateLimitExact(t *testing.T, nc newClientFunc) {
	e := newEnv(t, nc, Config{})
	const limit, window = 5, 800 * time.Millisecond
	var firstReset time.Time
	for i := 0; i < limit; i++ {
		r, err := e.c.CheckRateLimit(e.ctx, "u", "send", limit, window)
		must(t, err)
		if !r.Allowed || r.Remaining != limit-1-i || r.RetryAfter != 0 {
			t.Fatalf("hit %d: %+v", i, r)
		}
		if i == 0 {
			firstReset = r.ResetAt
		} else if !r.ResetAt.Equal(firstReset) {
			t.Fatalf("resetAt moved: %v vs %v", r.ResetAt, firstReset)
		}
	}
	now := time.UnixMilli(e.serverNow()) // truncated to ms, hence +1ms below
	if firstReset.Before(now) || firstReset.After(now.Add(window+time.Millisecond)) {
		t.Fatalf("resetAt %v not within the window from %v", firstReset, now)
	}
	r, err := e.c.CheckRateLimit(e.ctx, "u", "send", limit, window)
	must(t, err)
	if r.Allowed || r.Remaining != 0 || r.RetryAfter <= 0 || r.RetryAfter > window {
		t.Fatalf("over the limit: %+v", r)
	}
	// Denied attempts are not counted.
	key := e.c.keys.RateLimit("u", "send")
	if n := e.int(e.client.B().Zcard().Key(key).Build()); n != limit {
		t.Fatalf("zcard %d after a denial", n)
	}
	if p := e.pttl(key); p <= 0 || p > window.Milliseconds() {
		t.Fatalf("pttl %d", p)
	}
	// Other actions and users have their own windows.
	if r, err := e.c.CheckRateLimit(e.ctx, "u", "login", limit, window); err != nil || !r.Allowed {
		t.Fatalf("other action: %+v %v", r, err)
	}
	// Once the oldest hits leave, hits are allowed again, never more than
	// the limit inside one window.
	eventually(t, 5*time.Second, "window to slide", func() bool {
		r, err := e.c.CheckRateLimit(e.ctx, "u", "send", limit, window)
		must(t, err)
		return r.Allowed
	})
	if n := e.int(e.client.B().Zcard().Key(key).Build()); n > limit {
		t.Fatalf("window holds %d hits, limit %d", n, limit)
	}
	eventually(t, 5*time.Second, "rate limit key to expire", func() bool {
		return e.int(e.client.B().Exists().Key(key).Build()) == 0
	})
}

func testRateLimitConcurrent(t *testing.T, nc newClientFunc) {
	e := newEnv(t, nc, Config{})
	const callers, limit = 100, 10
	var allowed atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := e.c.CheckRateLimit(e.ctx, "u", "send", limit, time.Minute)
			if err != nil {
				errs <- err
				return
			}
			if r.Allowed {
				allowed.Add(1)
			} else if r.RetryAfter <= 0 || r.RetryAfter > time.Minute {
				errs <- fmt.Errorf("denied with RetryAfter %v", r.RetryAfter)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if allowed.Load() != limit {
		t.Fatalf("%d callers allowed, limit %d", allowed.Load(), limit)
	}
}

func testSecurityLog(t *testing.T, nc newClientFunc) {
	e := newEnv(t, nc, Config{SecurityLogLimit: 3})
	before := e.serverNow()
	for i := 0; i < 5; i++ {
		must(t, e.c.LogSecurityEvent(e.ctx, "u", chatstate.SecurityEvent{Type: fmt.Sprintf("login%d", i), IP: "2001:db8::1", DeviceID: "d1", Details: map[string]string{"n": fmt.Sprint(i)}}))
	}
	must(t, e.c.LogSecurityEvent(e.ctx, "u", chatstate.SecurityEvent{Type: "explicit", At: 42}))
	evs, err := e.c.SecurityEvents(e.ctx, "u", 0)
	must(t, err)
	if len(evs) != 3 || evs[0].Type != "explicit" || evs[0].At != 42 || evs[1].Type != "login4" || evs[2].Type != "login3" {
		t.Fatalf("%+v", evs)
	}
	if evs[1].At < before || evs[1].IP != "2001:db8::1" || evs[1].DeviceID != "d1" || evs[1].Details["n"] != "4" {
		t.Fatalf("%+v", evs[1])
	}
	if evs, _ := e.c.SecurityEvents(e.ctx, "u", 2); len(evs) != 2 {
		t.Fatalf("limit 2: %d", len(evs))
	}
	if p := e.pttl(e.c.keys.SecurityLog("u")); p <= 0 || p > (90*24*time.Hour).Milliseconds() {
		t.Fatalf("pttl %d", p)
	}
}

func testBadInput(t *testing.T, nc newClientFunc) {
	e := newEnv(t, nc, Config{MaxContentBytes: 10})
	c, ctx := e.c, e.ctx
	big := map[string]string{"x": strings.Repeat("y", 5000)}
	msg := func(f func(*chatstate.Message)) error {
		m := chatstate.Message{ConversationID: "c", SenderID: "u", Content: "ok"}
		f(&m)
		_, _, err := c.AddMessage(ctx, m)
		return err
	}
	cases := []struct {
		name string
		err  error
		code string
	}{
		{"empty conversation", msg(func(m *chatstate.Message) { m.ConversationID = "" }), chatstate.EINVALID},
		{"conversation with brace", msg(func(m *chatstate.Message) { m.ConversationID = "c}x" }), chatstate.EINVALID},
		{"sender with space", msg(func(m *chatstate.Message) { m.SenderID = "a b" }), chatstate.EINVALID},
		{"client id too long", msg(func(m *chatstate.Message) { m.ClientMessageID = strings.Repeat("a", 129) }), chatstate.EINVALID},
		{"bad type", msg(func(m *chatstate.Message) { m.Type = "te xt" }), chatstate.EINVALID},
		{"content too large", msg(func(m *chatstate.Message) { m.Content = strings.Repeat("a", 11) }), chatstate.ETOOLARGE},
		{"negative seq", msg(func(m *chatstate.Message) { m.Seq = -1 }), chatstate.EINVALID},
		{"huge seq", msg(func(m *chatstate.Message) { m.Seq = 1 << 60 }), chatstate.EINVALID},
		{"messages negative after", second(c.Messages(ctx, "c", -1, 0)), chatstate.EINVALID},
		{"messages negative limit", second(c.Messages(ctx, "c", 0, -1)), chatstate.EINVALID},
		{"messages bad conv", second(c.Messages(ctx, "{c}", 0, 0)), chatstate.EINVALID},
		{"seq floor negative", second(c.SetSeqFloor(ctx, "c", -5)), chatstate.EINVALID},
		{"last seq bad conv", second(c.LastSeq(ctx, "")), chatstate.EINVALID},
		{"session empty device", second(c.CreateSession(ctx, chatstate.Session{UserID: "u"})), chatstate.EINVALID},
		{"session data too large", second(c.CreateSession(ctx, chatstate.Session{UserID: "u", DeviceID: "d", Data: big})), chatstate.ETOOLARGE},
		{"touch bad user", second(c.UpdateSessionActivity(ctx, "u u", "d")), chatstate.EINVALID},
		{"session bad device", second(c.Session(ctx, "u", "d|x")), chatstate.EINVALID},
		{"sessions bad user", second(c.Sessions(ctx, "")), chatstate.EINVALID},
		{"delete bad device", c.DeleteSession(ctx, "u", ""), chatstate.EINVALID},
		{"sweep bad user", second(c.SweepSessions(ctx, "*")), chatstate.EINVALID},
		{"friends bad user", c.CacheFriendList(ctx, "", nil), chatstate.EINVALID},
		{"friend list bad user", third(c.FriendList(ctx, "a:b{")), chatstate.EINVALID},
		{"is friend bad other", third(c.IsFriend(ctx, "u", "")), chatstate.EINVALID},
		{"invalidate bad user", c.InvalidateFriendList(ctx, " "), chatstate.EINVALID},
		{"notification bad user", second(c.AddNotification(ctx, chatstate.Notification{UserID: "a b"})), chatstate.EINVALID},
		{"notification bad id", second(c.AddNotification(ctx, chatstate.Notification{UserID: "u", ID: "x y"})), chatstate.EINVALID},
		{"notification data too large", second(c.AddNotification(ctx, chatstate.Notification{UserID: "u", Data: big})), chatstate.ETOOLARGE},
		{"notifications negative limit", second(c.Notifications(ctx, "u", -1)), chatstate.EINVALID},
		{"rate limit zero", second(c.CheckRateLimit(ctx, "u", "a", 0, time.Second)), chatstate.EINVALID},
		{"rate limit huge", second(c.CheckRateLimit(ctx, "u", "a", MaxRateLimit+1, time.Second)), chatstate.EINVALID},
		{"rate window zero", second(c.CheckRateLimit(ctx, "u", "a", 1, 0)), chatstate.EINVALID},
		{"rate window negative", second(c.CheckRateLimit(ctx, "u", "a", 1, -time.Second)), chatstate.EINVALID},
		{"rate bad action", second(c.CheckRateLimit(ctx, "u", "a:b}", 1, time.Second)), chatstate.EINVALID},
		{"rate empty action", second(c.CheckRateLimit(ctx, "u", "", 1, time.Second)), chatstate.EINVALID},
		{"security empty type", c.LogSecurityEvent(ctx, "u", chatstate.SecurityEvent{}), chatstate.EINVALID},
		{"security bad device", c.LogSecurityEvent(ctx, "u", chatstate.SecurityEvent{Type: "login", DeviceID: "a b"}), chatstate.EINVALID},
		{"security long ip", c.LogSecurityEvent(ctx, "u", chatstate.SecurityEvent{Type: "login", IP: strings.Repeat("1", 65)}), chatstate.EINVALID},
		{"security too large", c.LogSecurityEvent(ctx, "u", chatstate.SecurityEvent{Type: "login", Details: big}), chatstate.ETOOLARGE},
		{"security events bad user", second(c.SecurityEvents(ctx, "", 1)), chatstate.EINVALID},
	}
	for _, tc := range cases {
		if got := chatstate.ErrorCode(tc.err); got != tc.code {
			t.Errorf("%s: want %q, got %v", tc.name, tc.code, tc.err)
		}
	}
	// Nothing reached Redis under the prefix.
	keys, err := e.client.Do(ctx, e.client.B().Keys().Pattern(e.prefix+"*").Build()).AsStrSlice()
	must(t, err)
	if len(keys) != 0 {
		t.Fatalf("bad input wrote keys: %v", keys)
	}
}

func second[T any](_ T, err error) error { return err }

func third[A, B any](_ A, _ B, err error) error { return err }

func testScriptFlush(t *testing.T, nc newClientFunc) {
	e := newEnv(t, nc, Config{})
	run := func() {
		t.Helper()
		_, _, err := e.c.AddMessage(e.ctx, chatstate.Message{ConversationID: "c", SenderID: "u", Content: "x"})
		must(t, err)
		_, err = e.c.CreateSession(e.ctx, chatstate.Session{UserID: "u", DeviceID: "d"})
		must(t, err)
		_, err = e.c.AddNotification(e.ctx, chatstate.Notification{UserID: "u"})
		must(t, err)
		_, err = e.c.CheckRateLimit(e.ctx, "u", "a", 10, time.Minute)
		must(t, err)
	}
	run()
	must(t, e.do(e.client.B().ScriptFlush().Build()).Error())
	run()
	if n, _ := e.c.LastSeq(e.ctx, "c"); n != 2 {
		t.Fatalf("seq %d", n)
	}
	if got, _ := e.c.Notifications(e.ctx, "u", 0); len(got) != 2 {
		t.Fatalf("notifications %d", len(got))
	}
}

func testStats(t *testing.T, nc newClientFunc) {
	e := newEnv(t, nc, Config{})
	_, _, err := e.c.AddMessage(e.ctx, chatstate.Message{ConversationID: "c", SenderID: "u", Content: "x"})
	must(t, err)
	s, err := e.c.Stats(e.ctx)
	must(t, err)
	if s.Keys < 1 || s.ConnectedClients < 1 || len(s.Info) == 0 {
		t.Fatalf("%+v", s)
	}
}

func TestParseInfo(t *testing.T) {
	s := parseInfo("# Server\r\nredis_version:7.0.15\r\n\r\n# Memory\r\nused_memory:1024\r\n# Stats\r\nkeyspace_hits:3\r\nkeyspace_misses:1\r\ninstantaneous_ops_per_sec:7\r\n# Keyspace\r\ndb0:keys=5,expires=2,avg_ttl=0\r\ndb3:keys=1,expires=0,avg_ttl=0\r\n")
	if s.RedisVersion != "7.0.15" || s.UsedMemory != 1024 || s.HitRate != 0.75 || s.OpsPerSec != 7 || s.Keys != 6 || s.Expires != 2 {
		t.Fatalf("%+v", s)
	}
	// Servers that hide sections give zeros, not errors.
	s = parseInfo("# Server\nredis_version:7.0.0\ngarbage line\n")
	if s.UsedMemory != 0 || s.HitRate != 0 || s.Keys != 0 {
		t.Fatalf("%+v", s)
	}
}

func testKnownDevices(t *testing.T, nc newClientFunc) {
	e := newEnv(t, nc, Config{MaxKnownDevices: 2})
	for _, tc := range []struct {
		device string
		isNew  bool
	}{{"phone", true}, {"phone", false}, {"tablet", true}, {"laptop", true}, {"tablet", false}, {"phone", true}} {
		got, err := e.c.RememberDevice(e.ctx, "u", tc.device)
		must(t, err)
		if got != tc.isNew {
			// the third device pushes out the least recently seen (phone)
			t.Fatalf("RememberDevice(%s) = %v, want %v", tc.device, got, tc.isNew)
		}
	}
	if p := e.pttl(e.c.keys.KnownDevices("u")); p <= 0 || p > (90*24*time.Hour).Milliseconds() {
		t.Fatalf("pttl %d", p)
	}
	_, err := e.c.RememberDevice(e.ctx, "u", "a b")
	wantCode(t, err, chatstate.EINVALID)
}
