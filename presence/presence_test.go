package presence

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/redis/rueidis"
)

func TestStateRedis(t *testing.T) { testState(t, realRedis) }

// testState is the behaviour contract of State, run against every Redis
// implementation we support.
func testState(t *testing.T, newClient newClientFunc) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, newClient newClientFunc)
	}{
		{"Validation", testValidation},
		{"MultiDevice", testMultiDevice},
		{"StaleSocketDisconnect", testStaleSocket},
		{"Status", testStatus},
		{"Invisible", testInvisible},
		{"DeviceExpiry", testDeviceExpiry},
		{"InvisibleExpiry", testInvisibleExpiry},
		{"TouchKeepsAlive", testTouchKeepsAlive},
		{"MaxDevices", testMaxDevices},
		{"CrashedNode", testCrashedNode},
		{"GracefulStop", testGracefulStop},
		{"SweepExpired", testSweepExpired},
		{"OnlineUsersPagination", testOnlineUsersPagination},
		{"PresenceBulk", testPresenceBulk},
		{"Typing", testTyping},
		{"ScriptFlush", testScriptFlush},
		{"ConcurrentDevices", testConcurrentDevices},
		{"Nodes", testNodes},
		{"TypingSweepAndCounts", testTypingSweepAndCounts},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newClient)
		})
	}
}

func newState(t *testing.T, c rueidis.Client, prefix string, cfg Config) *State {
	t.Helper()
	cfg.KeyPrefix = prefix
	if cfg.NodeID == "" {
		cfg.NodeID = "n1"
	}
	s := New(c, cfg)
	ok(t, s.Heartbeat(context.Background()))
	return s
}

func testValidation(t *testing.T, newClient newClientFunc) {
	c, prefix := newClient(t)
	s := newState(t, c, prefix, Config{MaxBulk: 3})
	ctx := ctxT(t)
	bad := []string{"", "a b", "{x}", "a}b", strings.Repeat("x", chatstate.MaxIDLen+1), "é", "a\nb", "a:b"}
	for _, id := range bad {
		_, err := s.SetUserOnline(ctx, id, "d", "s")
		wantCode(t, err, chatstate.EINVALID)
		_, err = s.SetUserOnline(ctx, "u", id, "s")
		wantCode(t, err, chatstate.EINVALID)
		_, err = s.SetUserOnline(ctx, "u", "d", id)
		wantCode(t, err, chatstate.EINVALID)
		_, err = s.SetUserOffline(ctx, id, "d")
		wantCode(t, err, chatstate.EINVALID)
		_, err = s.SetUserOffline(ctx, "u", id)
		wantCode(t, err, chatstate.EINVALID)
		_, err = s.SetSocketOffline(ctx, "u", "d", id)
		wantCode(t, err, chatstate.EINVALID)
		wantCode(t, s.TouchDevice(ctx, id, "d"), chatstate.EINVALID)
		wantCode(t, s.TouchDevice(ctx, "u", id), chatstate.EINVALID)
		_, err = s.UpdateUserStatus(ctx, id, chatstate.StatusAway)
		wantCode(t, err, chatstate.EINVALID)
		_, err = s.IsUserOnline(ctx, id)
		wantCode(t, err, chatstate.EINVALID)
		_, err = s.Presence(ctx, "u", id)
		wantCode(t, err, chatstate.EINVALID)
		wantCode(t, s.SetUserTyping(ctx, id, "c"), chatstate.EINVALID)
		wantCode(t, s.SetUserTyping(ctx, "u", id), chatstate.EINVALID)
		wantCode(t, s.StopUserTyping(ctx, id, "c"), chatstate.EINVALID)
		wantCode(t, s.StopUserTyping(ctx, "u", id), chatstate.EINVALID)
		_, err = s.TypingUsers(ctx, id)
		wantCode(t, err, chatstate.EINVALID)
	}
	for _, st := range []chatstate.Status{"", "offline", "sleeping", "ONLINE"} {
		_, err := s.UpdateUserStatus(ctx, "u", st)
		wantCode(t, err, chatstate.EINVALID)
	}
	_, err := s.Presence(ctx, "a", "b", "c", "d")
	wantCode(t, err, chatstate.EINVALID)
	// Duplicates count once against MaxBulk.
	if m, err := s.Presence(ctx, "a", "b", "c", "a", "b"); err != nil || len(m) != 3 {
		t.Fatalf("dedupe: %v %v", m, err)
	}
	_, err = s.OnlineUsers(ctx, 0, -1)
	wantCode(t, err, chatstate.EINVALID)
	wantCode(t, s.TouchDevice(ctx, "nobody", "d"), chatstate.ENOTFOUND)
	// Nothing was written by the rejected calls.
	if online, err := s.IsUserOnline(ctx, "u"); err != nil || online {
		t.Fatalf("u online=%v err=%v after rejected writes", online, err)
	}
}

func testMultiDevice(t *testing.T, newClient newClientFunc) {
	c, prefix := newClient(t)
	s := newState(t, c, prefix, Config{})
	ctx := ctxT(t)

	ch := must[chatstate.PresenceChange](t)(s.SetUserOnline(ctx, "alice", "phone", "s1"))
	if !ch.Changed || ch.Before.Online || !ch.After.Online || ch.After.Status != chatstate.StatusOnline || ch.After.Devices != 1 {
		t.Fatalf("first device: %+v", ch)
	}
	if ch.Before.Status != chatstate.StatusOffline || ch.Before.LastSeen != 0 || ch.After.UserID != "alice" {
		t.Fatalf("first device before: %+v", ch)
	}
	ch = must[chatstate.PresenceChange](t)(s.SetUserOnline(ctx, "alice", "laptop", "s2"))
	if ch.Changed || !ch.After.Online || ch.After.Devices != 2 {
		t.Fatalf("second device: %+v", ch)
	}
	// Re-registering a device (reconnect) does not add a device.
	ch = must[chatstate.PresenceChange](t)(s.SetUserOnline(ctx, "alice", "phone", "s3"))
	if ch.Changed || ch.After.Devices != 2 {
		t.Fatalf("reconnect: %+v", ch)
	}
	ch = must[chatstate.PresenceChange](t)(s.SetUserOffline(ctx, "alice", "phone"))
	if ch.Changed || !ch.After.Online || ch.After.Devices != 1 {
		t.Fatalf("one of two offline: %+v", ch)
	}
	if online := must[bool](t)(s.IsUserOnline(ctx, "alice")); !online {
		t.Fatal("alice offline while laptop connected")
	}
	t0 := redisNow(t, c)
	ch = must[chatstate.PresenceChange](t)(s.SetUserOffline(ctx, "alice", "laptop"))
	t1 := redisNow(t, c)
	if !ch.Changed || ch.After.Online || ch.After.Status != chatstate.StatusOffline || ch.After.Devices != 0 {
		t.Fatalf("last device offline: %+v", ch)
	}
	if ch.After.LastSeen < t0 || ch.After.LastSeen > t1 {
		t.Fatalf("lastSeen %d not in [%d,%d]", ch.After.LastSeen, t0, t1)
	}
	if online := must[bool](t)(s.IsUserOnline(ctx, "alice")); online {
		t.Fatal("alice online after last device left")
	}
	if p := presenceOf(t, s, "alice"); p.LastSeen != ch.After.LastSeen || p.Online {
		t.Fatalf("presence after offline: %+v", p)
	}
	// Offline of an unknown device: no-op, no change.
	ch = must[chatstate.PresenceChange](t)(s.SetUserOffline(ctx, "alice", "tablet"))
	if ch.Changed || ch.After.Online {
		t.Fatalf("unknown device offline: %+v", ch)
	}
	// Fully offline users leave the index.
	if n := must[int64](t)(c.Do(ctx, c.B().Zcard().Key(prefix+"online:users").Build()).AsInt64()); n != 0 {
		t.Fatalf("online:users has %d members after everyone left", n)
	}
}

func testStaleSocket(t *testing.T, newClient newClientFunc) {
	c, prefix := newClient(t)
	s := newState(t, c, prefix, Config{})
	ctx := ctxT(t)
	must[chatstate.PresenceChange](t)(s.SetUserOnline(ctx, "bob", "phone", "old"))
	must[chatstate.PresenceChange](t)(s.SetUserOnline(ctx, "bob", "phone", "new"))
	ch := must[chatstate.PresenceChange](t)(s.SetSocketOffline(ctx, "bob", "phone", "old"))
	if ch.Changed || !ch.After.Online {
		t.Fatalf("late disconnect of old socket removed the device: %+v", ch)
	}
	ch = must[chatstate.PresenceChange](t)(s.SetSocketOffline(ctx, "bob", "phone", "new"))
	if !ch.Changed || ch.After.Online {
		t.Fatalf("disconnect of current socket: %+v", ch)
	}
}

func testStatus(t *testing.T, newClient newClientFunc) {
	c, prefix := newClient(t)
	s := newState(t, c, prefix, Config{})
	ctx := ctxT(t)
	// Status set while offline: no public change, remembered.
	ch := must[chatstate.PresenceChange](t)(s.UpdateUserStatus(ctx, "carol", chatstate.StatusBusy))
	if ch.Changed || ch.After.Online || ch.After.Status != chatstate.StatusOffline {
		t.Fatalf("status while offline: %+v", ch)
	}
	ch = must[chatstate.PresenceChange](t)(s.SetUserOnline(ctx, "carol", "phone", "s1"))
	if !ch.Changed || ch.After.Status != chatstate.StatusBusy {
		t.Fatalf("online with remembered status: %+v", ch)
	}
	ch = must[chatstate.PresenceChange](t)(s.UpdateUserStatus(ctx, "carol", chatstate.StatusAway))
	if !ch.Changed || ch.Before.Status != chatstate.StatusBusy || ch.After.Status != chatstate.StatusAway || !ch.After.Online {
		t.Fatalf("busy -> away: %+v", ch)
	}
	ch = must[chatstate.PresenceChange](t)(s.UpdateUserStatus(ctx, "carol", chatstate.StatusAway))
	if ch.Changed {
		t.Fatalf("same status reported as change: %+v", ch)
	}
	// Persists across a full reconnect.
	must[chatstate.PresenceChange](t)(s.SetUserOffline(ctx, "carol", "phone"))
	ch = must[chatstate.PresenceChange](t)(s.SetUserOnline(ctx, "carol", "laptop", "s2"))
	if ch.After.Status != chatstate.StatusAway {
		t.Fatalf("status lost across reconnect: %+v", ch)
	}
	ch = must[chatstate.PresenceChange](t)(s.UpdateUserStatus(ctx, "carol", chatstate.StatusOnline))
	if !ch.Changed || ch.After.Status != chatstate.StatusOnline {
		t.Fatalf("away -> online: %+v", ch)
	}
}

func testInvisible(t *testing.T, newClient newClientFunc) {
	c, prefix := newClient(t)
	s := newState(t, c, prefix, Config{})
	ctx := ctxT(t)
	must[chatstate.PresenceChange](t)(s.SetUserOnline(ctx, "dave", "phone", "s1"))
	nextMs(t, c)
	t0 := redisNow(t, c)
	ch := must[chatstate.PresenceChange](t)(s.UpdateUserStatus(ctx, "dave", chatstate.StatusInvisible))
	t1 := redisNow(t, c)
	if !ch.Changed || ch.After.Online || ch.After.Status != chatstate.StatusOffline || ch.After.Devices != 0 {
		t.Fatalf("going invisible: %+v", ch)
	}
	hidden := ch.After.LastSeen
	if hidden < t0 || hidden > t1 {
		t.Fatalf("lastSeen %d should be when dave went invisible [%d,%d]", hidden, t0, t1)
	}
	// Activity and new devices while invisible do not leak.
	nextMs(t, c)
	ok(t, s.TouchDevice(ctx, "dave", "phone"))
	ch = must[chatstate.PresenceChange](t)(s.SetUserOnline(ctx, "dave", "laptop", "s2"))
	if ch.Changed || ch.After.Online || ch.After.LastSeen != hidden {
		t.Fatalf("new device while invisible: %+v", ch)
	}
	nextMs(t, c)
	ch = must[chatstate.PresenceChange](t)(s.SetUserOffline(ctx, "dave", "laptop"))
	if ch.Changed || ch.After.LastSeen != hidden {
		t.Fatalf("device offline while invisible leaked: %+v", ch)
	}
	if p := presenceOf(t, s, "dave"); p.Online || p.LastSeen != hidden || p.Devices != 0 || p.Status != chatstate.StatusOffline {
		t.Fatalf("invisible presence: %+v", p)
	}
	if online := must[bool](t)(s.IsUserOnline(ctx, "dave")); online {
		t.Fatal("invisible user reported online")
	}
	if connected := must[bool](t)(s.IsUserConnected(ctx, "dave")); !connected {
		t.Fatal("an invisible user with a live device is connected (no pushes for them)")
	}
	page := must[chatstate.OnlineUsersPage](t)(s.OnlineUsers(ctx, 0, 100))
	if len(page.UserIDs) != 0 {
		t.Fatalf("invisible user listed: %v", page.UserIDs)
	}
	// Invisibility persists across reconnect; visible again shows online.
	must[chatstate.PresenceChange](t)(s.SetUserOffline(ctx, "dave", "phone"))
	if connected := must[bool](t)(s.IsUserConnected(ctx, "dave")); connected {
		t.Fatal("no live device: not connected")
	}
	ch = must[chatstate.PresenceChange](t)(s.SetUserOnline(ctx, "dave", "phone", "s3"))
	if ch.Changed || ch.After.Online {
		t.Fatalf("invisible reconnect: %+v", ch)
	}
	ch = must[chatstate.PresenceChange](t)(s.UpdateUserStatus(ctx, "dave", chatstate.StatusOnline))
	if !ch.Changed || !ch.After.Online || ch.After.Devices != 1 {
		t.Fatalf("visible again: %+v", ch)
	}
}

func testDeviceExpiry(t *testing.T, newClient newClientFunc) {
	c, prefix := newClient(t)
	s := newState(t, c, prefix, Config{DeviceTTL: 300 * time.Millisecond})
	ctx := ctxT(t)
	ch := must[chatstate.PresenceChange](t)(s.SetUserOnline(ctx, "erin", "phone", "s1"))
	at := ch.After.LastSeen
	eventually(t, 5*time.Second, "erin offline after DeviceTTL", func() bool {
		return !must[bool](t)(s.IsUserOnline(ctx, "erin"))
	})
	p := presenceOf(t, s, "erin")
	if p.Online || p.LastSeen != at || p.Devices != 0 {
		t.Fatalf("expired presence %+v, want lastSeen %d", p, at)
	}
	wantCode(t, s.TouchDevice(ctx, "erin", "phone"), chatstate.ENOTFOUND)
	// An expired device is pruned by the next write, which starts from offline.
	ch = must[chatstate.PresenceChange](t)(s.SetUserOnline(ctx, "erin", "laptop", "s2"))
	if !ch.Changed || ch.Before.Online || ch.Before.LastSeen != at || ch.After.Devices != 1 {
		t.Fatalf("online after expiry: %+v", ch)
	}
	n := must[int64](t)(c.Do(ctx, c.B().Hexists().Key(prefix+"presence:{u:erin}").Field("d:phone").Build()).AsInt64())
	if n != 0 {
		t.Fatal("expired device field not pruned by write")
	}
}

// Devices of an invisible user that expire do not reveal their activity,
// neither on reads nor once a write prunes them.
func testInvisibleExpiry(t *testing.T, newClient newClientFunc) {
	c, prefix := newClient(t)
	s := newState(t, c, prefix, Config{DeviceTTL: 300 * time.Millisecond})
	ctx := ctxT(t)
	must[chatstate.PresenceChange](t)(s.SetUserOnline(ctx, "ike", "phone", "s1"))
	hidden := must[chatstate.PresenceChange](t)(s.UpdateUserStatus(ctx, "ike", chatstate.StatusInvisible)).After.LastSeen
	nextMs(t, c)
	ok(t, s.TouchDevice(ctx, "ike", "phone"))
	touched := redisNow(t, c) // >= the touch's activity time
	eventually(t, 5*time.Second, "invisible device expires", func() bool {
		return redisNow(t, c) > touched+300
	})
	if p := presenceOf(t, s, "ike"); p.LastSeen != hidden {
		t.Fatalf("read leaked activity while invisible: %+v, want lastSeen %d", p, hidden)
	}
	ch := must[chatstate.PresenceChange](t)(s.UpdateUserStatus(ctx, "ike", chatstate.StatusAway))
	if ch.Changed || ch.After.Online || ch.After.LastSeen != hidden {
		t.Fatalf("prune while invisible leaked activity: %+v, want lastSeen %d", ch, hidden)
	}
}

func testTouchKeepsAlive(t *testing.T, newClient newClientFunc) {
	c, prefix := newClient(t)
	ttl := time.Second
	s := newState(t, c, prefix, Config{DeviceTTL: ttl})
	ctx := ctxT(t)
	ch := must[chatstate.PresenceChange](t)(s.SetUserOnline(ctx, "fay", "phone", "s1"))
	first := ch.After.LastSeen
	// Keep touching for well over DeviceTTL: every touch must find the
	// device alive, because the previous one refreshed it.
	end := time.Now().Add(2 * ttl)
	for time.Now().Before(end) {
		ok(t, s.TouchDevice(ctx, "fay", "phone"))
		time.Sleep(100 * time.Millisecond) // activity pacing, not synchronisation
	}
	p := presenceOf(t, s, "fay")
	if !p.Online || p.LastSeen <= first+ttl.Milliseconds() {
		t.Fatalf("after touches: %+v (first activity %d)", p, first)
	}
}

func testMaxDevices(t *testing.T, newClient newClientFunc) {
	c, prefix := newClient(t)
	s := newState(t, c, prefix, Config{MaxDevices: 3})
	ctx := ctxT(t)
	for _, d := range []string{"d1", "d2", "d3"} {
		must[chatstate.PresenceChange](t)(s.SetUserOnline(ctx, "gus", d, "s-"+d))
		nextMs(t, c)
	}
	ok(t, s.TouchDevice(ctx, "gus", "d1")) // d2 is now the least active
	nextMs(t, c)
	ch := must[chatstate.PresenceChange](t)(s.SetUserOnline(ctx, "gus", "d4", "s-d4"))
	if ch.After.Devices != 3 {
		t.Fatalf("devices %d, want 3", ch.After.Devices)
	}
	wantCode(t, s.TouchDevice(ctx, "gus", "d2"), chatstate.ENOTFOUND)
	for _, d := range []string{"d1", "d3", "d4"} {
		ok(t, s.TouchDevice(ctx, "gus", d))
	}
	n := must[int64](t)(c.Do(ctx, c.B().Hlen().Key(prefix+"presence:{u:gus}").Build()).AsInt64())
	if n != 3 {
		t.Fatalf("hash has %d fields, want 3 devices", n)
	}
}

func testPresenceBulk(t *testing.T, newClient newClientFunc) {
	c, prefix := newClient(t)
	s := newState(t, c, prefix, Config{})
	ctx := ctxT(t)
	must[chatstate.PresenceChange](t)(s.SetUserOnline(ctx, "u1", "d", "s"))
	must[chatstate.PresenceChange](t)(s.SetUserOnline(ctx, "u2", "d", "s"))
	must[chatstate.PresenceChange](t)(s.UpdateUserStatus(ctx, "u2", chatstate.StatusBusy))
	must[chatstate.PresenceChange](t)(s.SetUserOnline(ctx, "u3", "d", "s"))
	must[chatstate.PresenceChange](t)(s.SetUserOffline(ctx, "u3", "d"))
	var ids []string
	for i := 0; i < 500; i++ {
		ids = append(ids, fmt.Sprintf("nobody%d", i%450))
	}
	ids = append(ids, "u1", "u2", "u3")
	m := must[map[string]chatstate.Presence](t)(s.Presence(ctx, ids...))
	if len(m) != 453 {
		t.Fatalf("%d entries, want 453", len(m))
	}
	if p := m["u1"]; !p.Online || p.Status != chatstate.StatusOnline || p.Devices != 1 || p.UserID != "u1" {
		t.Fatalf("u1 %+v", p)
	}
	if p := m["u2"]; !p.Online || p.Status != chatstate.StatusBusy {
		t.Fatalf("u2 %+v", p)
	}
	if p := m["u3"]; p.Online || p.Status != chatstate.StatusOffline || p.LastSeen == 0 {
		t.Fatalf("u3 %+v", p)
	}
	if p := m["nobody7"]; p.Online || p.LastSeen != 0 || p.Status != chatstate.StatusOffline {
		t.Fatalf("unknown user %+v", p)
	}
	if m := must[map[string]chatstate.Presence](t)(s.Presence(ctx)); len(m) != 0 {
		t.Fatalf("empty query returned %v", m)
	}
}

func testOnlineUsersPagination(t *testing.T, newClient newClientFunc) {
	c, prefix := newClient(t)
	s := newState(t, c, prefix, Config{})
	ctx := ctxT(t)
	want := map[string]bool{}
	for i := 0; i < 300; i++ {
		id := fmt.Sprintf("user%03d", i)
		must[chatstate.PresenceChange](t)(s.SetUserOnline(ctx, id, "d", "s"))
		switch {
		case i%10 == 1:
			must[chatstate.PresenceChange](t)(s.UpdateUserStatus(ctx, id, chatstate.StatusInvisible))
		case i%10 == 2:
			must[chatstate.PresenceChange](t)(s.SetUserOffline(ctx, id, "d"))
		case i%10 == 3:
			// Offline without leaving the index (as after a failed ZREM):
			// OnlineUsers must still not list it.
			must[chatstate.PresenceChange](t)(s.SetUserOffline(ctx, id, "d"))
			ok(t, c.Do(ctx, c.B().Zadd().Key(prefix+"online:users").ScoreMember().ScoreMember(1e15, id).Build()).Error())
		default:
			want[id] = true
		}
	}
	got := map[string]bool{}
	var cursor uint64
	pages := 0
	for {
		page := must[chatstate.OnlineUsersPage](t)(s.OnlineUsers(ctx, cursor, 10))
		pages++
		for _, id := range page.UserIDs {
			if got[id] {
				t.Fatalf("%s returned twice", id)
			}
			if !want[id] {
				t.Fatalf("%s listed but not publicly online", id)
			}
			got[id] = true
		}
		if cursor = page.Cursor; cursor == 0 {
			break
		}
		if pages > 1000 {
			t.Fatal("pagination does not end")
		}
	}
	if len(got) != len(want) {
		t.Fatalf("visited %d of %d online users", len(got), len(want))
	}
	if pages < 5 {
		t.Fatalf("only %d pages with limit 10 over 300 members", pages)
	}
	// limit 0 means the default page size; a huge limit is capped, not an error.
	for _, limit := range []int{0, 1 << 30} {
		page := must[chatstate.OnlineUsersPage](t)(s.OnlineUsers(ctx, 0, limit))
		if len(page.UserIDs) == 0 {
			t.Fatalf("limit %d: empty first page", limit)
		}
	}
}

func testTyping(t *testing.T, newClient newClientFunc) {
	c, prefix := newClient(t)
	s := newState(t, c, prefix, Config{TypingTTL: 300 * time.Millisecond, MaxTypers: 3})
	ctx := ctxT(t)
	if ids := must[[]string](t)(s.TypingUsers(ctx, "c1")); len(ids) != 0 {
		t.Fatalf("typing in empty conversation: %v", ids)
	}
	ok(t, s.SetUserTyping(ctx, "a", "c1"))
	ok(t, s.SetUserTyping(ctx, "b", "c1"))
	ok(t, s.SetUserTyping(ctx, "a", "c2"))
	ids := must[[]string](t)(s.TypingUsers(ctx, "c1"))
	sort.Strings(ids)
	if fmt.Sprint(ids) != "[a b]" {
		t.Fatalf("typing c1 = %v", ids)
	}
	ok(t, s.StopUserTyping(ctx, "a", "c1"))
	if ids := must[[]string](t)(s.TypingUsers(ctx, "c1")); fmt.Sprint(ids) != "[b]" {
		t.Fatalf("after stop: %v", ids)
	}
	if ids := must[[]string](t)(s.TypingUsers(ctx, "c2")); fmt.Sprint(ids) != "[a]" {
		t.Fatalf("c2: %v", ids)
	}
	eventually(t, 5*time.Second, "typing entries expire", func() bool {
		return len(must[[]string](t)(s.TypingUsers(ctx, "c1"))) == 0
	})
	// Cap: the newest typers stay.
	for _, u := range []string{"u1", "u2", "u3", "u4", "u5"} {
		ok(t, s.SetUserTyping(ctx, u, "c3"))
		nextMs(t, c)
	}
	ids = must[[]string](t)(s.TypingUsers(ctx, "c3"))
	if fmt.Sprint(ids) != "[u3 u4 u5]" {
		t.Fatalf("capped typers = %v", ids)
	}
}

func testScriptFlush(t *testing.T, newClient newClientFunc) {
	c, prefix := newClient(t)
	s := newState(t, c, prefix, Config{})
	ctx := ctxT(t)
	must[chatstate.PresenceChange](t)(s.SetUserOnline(ctx, "hal", "d", "s"))
	ok(t, s.SetUserTyping(ctx, "hal", "c"))
	ok(t, c.Do(ctx, c.B().ScriptFlush().Build()).Error())
	// Single-call path (rueidis.Lua) and pipelined path (own EVAL fallback).
	if !must[bool](t)(s.IsUserOnline(ctx, "hal")) {
		t.Fatal("hal offline after SCRIPT FLUSH")
	}
	ok(t, c.Do(ctx, c.B().ScriptFlush().Build()).Error())
	if m := must[map[string]chatstate.Presence](t)(s.Presence(ctx, "hal", "x")); !m["hal"].Online {
		t.Fatal("bulk after SCRIPT FLUSH")
	}
	ok(t, c.Do(ctx, c.B().ScriptFlush().Build()).Error())
	ch := must[chatstate.PresenceChange](t)(s.SetUserOnline(ctx, "hal", "d2", "s2"))
	if ch.After.Devices != 2 {
		t.Fatalf("pipelined write after flush: %+v", ch)
	}
	ok(t, c.Do(ctx, c.B().ScriptFlush().Build()).Error())
	ok(t, s.TouchDevice(ctx, "hal", "d2"))
	ok(t, c.Do(ctx, c.B().ScriptFlush().Build()).Error())
	if ids := must[[]string](t)(s.TypingUsers(ctx, "c")); fmt.Sprint(ids) != "[hal]" {
		t.Fatalf("typing after flush: %v", ids)
	}
	ok(t, c.Do(ctx, c.B().ScriptFlush().Build()).Error())
	ok(t, s.Heartbeat(ctx))
	ok(t, c.Do(ctx, c.B().ScriptFlush().Build()).Error())
	if _, err := s.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
}

func testConcurrentDevices(t *testing.T, newClient newClientFunc) {
	c, prefix := newClient(t)
	s := newState(t, c, prefix, Config{MaxDevices: 64})
	ctx := ctxT(t)
	var wg sync.WaitGroup
	changed := make(chan bool, 40)
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch, err := s.SetUserOnline(ctx, "ivy", fmt.Sprintf("d%d", i), "s")
			if err != nil {
				t.Error(err)
			}
			changed <- ch.Changed
		}()
	}
	wg.Wait()
	close(changed)
	n := 0
	for ch := range changed {
		if ch {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d concurrent registrations reported the offline->online change, want exactly 1", n)
	}
	if p := presenceOf(t, s, "ivy"); p.Devices != 40 {
		t.Fatalf("devices %d, want 40", p.Devices)
	}
}
