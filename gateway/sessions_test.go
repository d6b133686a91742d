package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/keys"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/golang-jwt/jwt/v5"
)

func tokenFor(user string, secret []byte, exp time.Time) string {
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": user, "exp": exp.Unix()}).SignedString(secret)
	return tok
}

// connectDevice connects user's device with extra handshake headers.
func connectDevice(t *testing.T, n *node, user, device string, header http.Header) *testClient {
	t.Helper()
	c, err := dialClientHeader(t, n.url, map[string]string{"token": tokenFor(user, testSecret, time.Now().Add(time.Hour)), "deviceId": device}, header)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// poll retries cond every 20 ms until it holds, failing after 10 s.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func mustPrefixes(t *testing.T, v string) []netip.Prefix {
	t.Helper()
	p, err := ParseTrustedProxies(v)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseTrustedProxies(t *testing.T) {
	p := mustPrefixes(t, " 10.0.0.0/8, 192.168.1.10 ,fd00::/8,::ffff:172.16.0.1")
	want := []string{"10.0.0.0/8", "192.168.1.10/32", "fd00::/8", "172.16.0.1/32"}
	if len(p) != len(want) {
		t.Fatalf("got %v", p)
	}
	for i := range want {
		if p[i].String() != want[i] {
			t.Errorf("entry %d: %s, want %s", i, p[i], want[i])
		}
	}
	for _, bad := range []string{"", ",", "10.0.0.0/33", "example.com", "10.0.0.1-10.0.0.9"} {
		if _, err := ParseTrustedProxies(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// clientIP honours forwarding headers only from a trusted peer, and then
// takes the right-most untrusted X-Forwarded-For address.
func TestClientIP(t *testing.T) {
	g := &Gateway{cfg: Config{TrustedProxies: mustPrefixes(t, "10.0.0.0/8,fd00::/8")}}
	for _, tc := range []struct {
		peer, xff, realIP, want string
	}{
		{peer: "203.0.113.5:4000", want: "203.0.113.5"},
		{peer: "203.0.113.5:4000", xff: "198.51.100.1", realIP: "198.51.100.2", want: "203.0.113.5"}, // untrusted peer: headers ignored
		{peer: "10.1.2.3:4000", want: "10.1.2.3"},
		{peer: "10.1.2.3:4000", xff: "198.51.100.1", want: "198.51.100.1"},
		{peer: "10.1.2.3:4000", xff: "1.1.1.1, 198.51.100.1, 10.9.9.9", want: "198.51.100.1"}, // spoofed 1.1.1.1 on the left
		{peer: "10.1.2.3:4000", xff: "10.5.5.5, 10.6.6.6", want: "10.5.5.5"},                  // all trusted: left-most
		{peer: "10.1.2.3:4000", xff: "garbage, 10.6.6.6", want: "10.6.6.6"},                   // garbage ends the walk
		{peer: "10.1.2.3:4000", xff: "198.51.100.1:5555", want: "198.51.100.1"},
		{peer: "10.1.2.3:4000", realIP: "198.51.100.2", want: "198.51.100.2"},
		{peer: "[fd00::1]:4000", xff: "2001:db8::7", want: "2001:db8::7"},
		{peer: "[::ffff:10.0.0.1]:4000", xff: "198.51.100.3", want: "198.51.100.3"},
	} {
		r := httptest.NewRequest("GET", "/socket.io/", nil)
		r.RemoteAddr = tc.peer
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if tc.realIP != "" {
			r.Header.Set("X-Real-IP", tc.realIP)
		}
		if got := g.clientIP(r); got != tc.want {
			t.Errorf("peer %s xff %q real %q: %s, want %s", tc.peer, tc.xff, tc.realIP, got, tc.want)
		}
	}
	// Two X-Forwarded-For headers are one list.
	r := httptest.NewRequest("GET", "/socket.io/", nil)
	r.RemoteAddr = "10.1.2.3:1"
	r.Header.Add("X-Forwarded-For", "198.51.100.1")
	r.Header.Add("X-Forwarded-For", "198.51.100.9, 10.0.0.2")
	if got := g.clientIP(r); got != "198.51.100.9" {
		t.Errorf("two headers: %s", got)
	}
}

// The session and the socket record keep the client's ip and user agent;
// X-Forwarded-For counts only on the node that trusts the peer (loopback).
func TestSessionRecordsIPAndUserAgent(t *testing.T) {
	client, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	store := openStore(t)
	plain := startNode(t, client, store, prefix, "plain")
	proxied := startNode(t, client, store, prefix, "proxied", func(c *Config) { c.TrustedProxies = mustPrefixes(t, "127.0.0.0/8,::1") })
	h := http.Header{"User-Agent": {"chat-app/1.2 (test)"}, "X-Forwarded-For": {"1.1.1.1, 203.0.113.7"}}
	connectDevice(t, plain, "alice", "phone", h)
	connectDevice(t, proxied, "alice", "laptop", h)

	sessions, err := plain.cache.Sessions(ctx, "alice")
	if err != nil || len(sessions) != 2 {
		t.Fatalf("sessions %v, %v", sessions, err)
	}
	want := map[string]string{"laptop": "203.0.113.7", "phone": "127.0.0.1"}
	for _, s := range sessions {
		if s.Data["ip"] != want[s.DeviceID] || s.Data["userAgent"] != "chat-app/1.2 (test)" {
			t.Errorf("session of %s: %v, want ip %s", s.DeviceID, s.Data, want[s.DeviceID])
		}
	}
	for _, n := range []*node{plain, proxied} {
		conns := n.gw.hub.conns("alice")
		if len(conns) != 1 {
			t.Fatalf("node holds %d sockets of alice", len(conns))
		}
		rec, err := client.Do(ctx, client.B().Hgetall().Key(keys.New(prefix).Socket(conns[0].ID())).Build()).AsStrMap()
		if err != nil {
			t.Fatal(err)
		}
		dev := rec["deviceId"]
		if rec["ip"] != want[dev] || rec["userAgent"] != "chat-app/1.2 (test)" {
			t.Errorf("socket record of %s: %v", dev, rec)
		}
	}
}

// countingCache counts UpdateSessionActivity calls.
type countingCache struct {
	chatstate.Cache
	touches atomic.Int64
}

func (c *countingCache) UpdateSessionActivity(ctx context.Context, userID, deviceID string) (chatstate.Session, error) {
	c.touches.Add(1)
	return c.Cache.UpdateSessionActivity(ctx, userID, deviceID)
}

func countingNode(t *testing.T, cfg Config) (*node, *countingCache) {
	t.Helper()
	client, prefix := redistest.Start(t)
	cc := &countingCache{}
	n := startNodeDeps(t, client, openStore(t), prefix, cfg, func(d *Deps) { cc.Cache = d.Cache; d.Cache = cc })
	return n, cc
}

// Events extend the session at most once per SessionActivityInterval per
// connection, not once per event.
func TestSessionActivityThrottled(t *testing.T) {
	const interval = 300 * time.Millisecond
	n, cc := countingNode(t, Config{NodeID: "a", SessionActivityInterval: interval, EventRate: 1000, EventBurst: 1000})
	ctx := redistest.Ctx(t)
	c := connectDevice(t, n, "alice", "phone", nil)
	before, err := n.cache.Session(ctx, "alice", "phone")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	events := 0
	// Events until the session has been extended twice.
	for cc.touches.Load() < 2 {
		if time.Since(start) > 20*time.Second {
			t.Fatalf("%d touches after %d events", cc.touches.Load(), events)
		}
		if ack := c.emit("presence:get", map[string]any{"userIds": []string{"bob"}}); ack["ok"] != true {
			t.Fatalf("event: %v", ack)
		}
		events++
		time.Sleep(10 * time.Millisecond) // pacing under the event rate limit, not synchronisation
	}
	elapsed := time.Since(start)
	touches := cc.touches.Load()
	if max := int64(elapsed/interval) + 1; touches > max {
		t.Fatalf("%d touches in %s with an interval of %s (at most %d)", touches, elapsed, interval, max)
	}
	if int64(events) <= touches*2 {
		t.Fatalf("%d events, %d touches: not throttled", events, touches)
	}
	after, err := n.cache.Session(ctx, "alice", "phone")
	if err != nil || after.LastActivity <= before.LastActivity || after.ExpiresAt <= before.ExpiresAt {
		t.Fatalf("session not extended: before %+v after %+v (%v)", before, after, err)
	}
}

// While its socket stays connected, the periodic refresh extends the
// session, and puts it back when it is gone; with an activity interval
// longer than a third of the session TTL, sessions get rounds of their own.
func TestSessionKeptAliveWhileConnected(t *testing.T) {
	n, cc := countingNode(t, Config{NodeID: "a", SessionActivityInterval: time.Millisecond, ActivityInterval: time.Hour, SessionTTL: 1500 * time.Millisecond})
	ctx := redistest.Ctx(t)
	connectDevice(t, n, "alice", "phone", nil)
	// Session rounds every 500 ms (a third of the TTL), presence every hour;
	// the TTL leaves a loaded machine time between the refresh and the read.
	poll(t, "a session round", func() bool { return cc.touches.Load() >= 2 })

	if err := n.cache.DeleteSession(ctx, "alice", "phone"); err != nil {
		t.Fatal(err)
	}
	// A session round in flight when the session was deleted extends it
	// just before the delete and makes the next touch within
	// SessionActivityInterval a no-op: refresh until a touch lands after
	// the delete.
	var s chatstate.Session
	var err error
	poll(t, "the session recreated by a refresh", func() bool {
		if failed := n.gw.refreshAll(ctx); failed != 0 {
			t.Fatalf("%d refreshes failed", failed)
		}
		s, err = n.cache.Session(ctx, "alice", "phone")
		return err == nil
	})
	if s.Data["ip"] != "127.0.0.1" {
		t.Fatalf("session recreated without the connection's data: %+v", s)
	}
}

// The last socket of a device ending deletes its session; a device that
// reconnected to another node keeps it, and a drained disconnect too.
func TestSessionEndsWithLastSocket(t *testing.T) {
	client, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	store := openStore(t)
	gone := make(chan string, 10) // device ids whose onDisconnect ended
	hook := func(c *Config) {
		c.afterDisconnect = func(_, device string) {
			select {
			case gone <- device:
			default: // the cleanup's disconnects
			}
		}
	}
	a, b := startNode(t, client, store, prefix, "a", hook), startNode(t, client, store, prefix, "b", hook)
	ended := func(device string) {
		t.Helper()
		select {
		case d := <-gone:
			if d != device {
				t.Fatalf("disconnect of %s, want %s", d, device)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no disconnect of %s", device)
		}
	}
	exists := func(device string) bool {
		_, err := a.cache.Session(ctx, "alice", device)
		if err != nil && chatstate.ErrorCode(err) != chatstate.ENOTFOUND {
			t.Fatal(err)
		}
		return err == nil
	}

	// Plain disconnect.
	c := connectDevice(t, a, "alice", "phone", nil)
	if !exists("phone") {
		t.Fatal("no session after connect")
	}
	c.ws.Close()
	ended("phone")
	if exists("phone") {
		t.Fatal("the session outlived its device's last socket")
	}

	// The phone reconnects to b before its socket on a ends: the session stays.
	old := connectDevice(t, a, "alice", "phone", nil)
	connectDevice(t, b, "alice", "phone", nil)
	old.ws.Close()
	ended("phone")
	if !exists("phone") {
		t.Fatal("the session of a device connected on another node was deleted")
	}

	// Drained: the client is expected on another node, the session stays.
	d := startNode(t, client, store, prefix, "d", hook, func(c *Config) { c.DrainGrace = time.Millisecond })
	connectDevice(t, d, "alice", "tablet", nil)
	d.gw.Drain(ctx, time.Millisecond)
	ended("tablet")
	if !exists("tablet") {
		t.Fatal("a drained disconnect deleted the session")
	}
}

// Revoking a session deletes it and disconnects that device on another
// node (session:revoked, then the server's DISCONNECT), and only it.
func TestRevokeSessionOnAnotherNode(t *testing.T) {
	client, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	store := openStore(t)
	a, b := startNode(t, client, store, prefix, "a"), startNode(t, client, store, prefix, "b")
	phone := connectDevice(t, b, "alice", "phone", nil)
	laptop := connectDevice(t, a, "alice", "laptop", nil)
	other := connectDevice(t, b, "alice", "tablet", nil)

	if err := a.gw.RevokeSession(ctx, "alice", "phone"); err != nil {
		t.Fatal(err)
	}
	ev := phone.waitEvent(EventSessionRevoked, nil)
	if ev["deviceId"] != "phone" || ev["reason"] != "revoked" {
		t.Fatalf("session:revoked %v", ev)
	}
	phone.waitEvent(serverDisconnect, nil)
	select {
	case <-phone.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the revoked socket stays open")
	}
	sessions, err := a.cache.Sessions(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	var devices []string
	for _, s := range sessions {
		devices = append(devices, s.DeviceID)
	}
	if len(devices) != 2 || devices[0] != "laptop" || devices[1] != "tablet" {
		t.Fatalf("sessions after revoke: %v", devices)
	}
	// The other devices stay connected and were told nothing.
	for _, c := range []*testClient{laptop, other} {
		if ack := c.emit("presence:get", map[string]any{"userIds": []string{"bob"}}); ack["ok"] != true {
			t.Fatalf("other device: %v", ack)
		}
		if n := len(c.received(EventSessionRevoked)); n != 0 {
			t.Fatalf("another device got session:revoked")
		}
	}
	evs, err := a.cache.SecurityEvents(ctx, "alice", 0)
	if err != nil || len(evs) == 0 || evs[0].Type != SecuritySessionRevoked || evs[0].DeviceID != "phone" {
		t.Fatalf("security log %+v, %v", evs, err)
	}
	if err := a.gw.RevokeSession(ctx, "alice", "phone"); chatstate.ErrorCode(err) != chatstate.ENOTFOUND {
		t.Fatalf("second revoke: %v", err)
	}
	if err := a.gw.RevokeSession(ctx, "alice", "bad id"); chatstate.ErrorCode(err) != chatstate.EINVALID {
		t.Fatalf("bad device id: %v", err)
	}
}

// eventsOf returns the types of userID's security events, oldest first.
func eventsOf(t *testing.T, n *node, userID string) []chatstate.SecurityEvent {
	t.Helper()
	evs, err := n.cache.SecurityEvents(redistest.Ctx(t), userID, 0)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func countType(evs []chatstate.SecurityEvent, typ string) int {
	n := 0
	for _, e := range evs {
		if e.Type == typ {
			n++
		}
	}
	return n
}

// The security log gets failed handshakes whose sub can be read (throttled),
// refused rate limits (once per user per window), and new devices.
func TestSecurityLog(t *testing.T) {
	client, prefix := redistest.Start(t)
	store := openStore(t)
	n := startNode(t, client, store, prefix, "a", func(c *Config) {
		c.EventRate, c.EventBurst = 1, 2
		c.MessageRateLimit, c.MessageRateWindow = 1, time.Hour
	})
	ctx := redistest.Ctx(t)

	// auth_failed: a wrong signature and an expired token name alice.
	h := http.Header{"User-Agent": {"evil/1"}}
	if _, err := dialClientHeader(t, n.url, map[string]string{"token": tokenFor("alice", []byte("wrong"), time.Now().Add(time.Hour)), "deviceId": "x1"}, h); err == nil {
		t.Fatal("a forged token was accepted")
	}
	if _, err := dialClientHeader(t, n.url, map[string]string{"token": tokenFor("alice", testSecret, time.Now().Add(-time.Minute))}, h); err == nil {
		t.Fatal("an expired token was accepted")
	}
	// Not a JWT: nobody to log it to; the refusal is the same.
	if _, err := dialClient(t, n.url, map[string]string{"token": "not-a-jwt"}); err == nil {
		t.Fatal("garbage accepted")
	}
	evs := eventsOf(t, n, "alice")
	if len(evs) != 2 || evs[1].Details["reason"] != "bad_signature" || evs[0].Details["reason"] != "token_expired" ||
		evs[1].IP != "127.0.0.1" || evs[1].DeviceID != "x1" || evs[1].Details["userAgent"] != "evil/1" {
		t.Fatalf("auth_failed events %+v", evs)
	}
	for _, e := range evs {
		if e.Type != SecurityAuthFailed {
			t.Fatalf("event %+v", e)
		}
	}
	// A flood of forged tokens writes at most authFailedPerMinute entries.
	for range 15 {
		dialClient(t, n.url, map[string]string{"token": tokenFor("victim", []byte("wrong"), time.Now().Add(time.Hour))})
	}
	if got := countType(eventsOf(t, n, "victim"), SecurityAuthFailed); got != authFailedPerMinute {
		t.Fatalf("%d auth_failed entries after 15 forged handshakes, want %d", got, authFailedPerMinute)
	}

	// new_device: the first connect of a device, not a second socket of
	// the device while its session exists, nor a reconnect after the
	// session ended with a dropped connection.
	first := connectDevice(t, n, "bob", "phone", http.Header{"User-Agent": {"bob-phone"}})
	connectDevice(t, n, "bob", "phone", nil).ws.Close()
	first.ws.Close()
	poll(t, "bob's session to end with his last socket", func() bool {
		_, err := n.cache.Session(ctx, "bob", "phone")
		return chatstate.ErrorCode(err) == chatstate.ENOTFOUND
	})
	connectDevice(t, n, "bob", "phone", nil)
	evs = eventsOf(t, n, "bob")
	if len(evs) != 1 || evs[0].Type != SecurityNewDevice || evs[0].DeviceID != "phone" || evs[0].IP != "127.0.0.1" || evs[0].Details["userAgent"] != "bob-phone" {
		t.Fatalf("bob's log %+v", evs)
	}

	// rate_limited, the event limit: one entry for a flood.
	flood := connectDevice(t, n, "carol", "phone", nil)
	limited := 0
	for range 20 {
		if ack := flood.emit("presence:get", map[string]any{"userIds": []string{"bob"}}); ack["ok"] != true {
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("the event limit never refused")
	}
	// The entry is written after the ack: wait for it.
	poll(t, "carol's rate_limited entry", func() bool { return countType(eventsOf(t, n, "carol"), SecurityRateLimited) > 0 })
	evs = eventsOf(t, n, "carol")
	if got := countType(evs, SecurityRateLimited); got != 1 || evs[0].Details["limit"] != "events" || evs[0].Details["event"] != "presence:get" {
		t.Fatalf("carol's log after %d refusals: %+v", limited, evs)
	}

	// rate_limited, the message limit (1 per hour), from two devices: one
	// entry per user per window.
	if _, err := n.dir.CreateConversation(ctx, chatstate.Conversation{ID: "c1", Members: []string{"dave", "bob"}}); err != nil {
		t.Fatal(err)
	}
	for i, dev := range []string{"phone", "laptop"} {
		c := connectDevice(t, n, "dave", dev, nil)
		for j := range 2 {
			ack := c.emit("message:send", map[string]any{"conversationId": "c1", "clientMessageId": dev + string(rune('a'+j)), "content": "hi"})
			if want := i == 0 && j == 0; (ack["ok"] == true) != want {
				t.Fatalf("send %d from %s: %v", j, dev, ack)
			}
		}
	}
	poll(t, "dave's rate_limited entry", func() bool { return countType(eventsOf(t, n, "dave"), SecurityRateLimited) > 0 })
	evs = eventsOf(t, n, "dave")
	if got := countType(evs, SecurityRateLimited); got != 1 {
		t.Fatalf("dave's log: %d rate_limited, want 1: %+v", got, evs)
	}
	for _, e := range evs {
		if e.Type == SecurityRateLimited && e.Details["limit"] != "messages" {
			t.Fatalf("dave's entry %+v", e)
		}
	}
}
