package presence

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/redis/rueidis"
)

func indexScore(t *testing.T, c rueidis.Client, prefix, id string) (float64, bool) {
	t.Helper()
	sc, err := c.Do(context.Background(), c.B().Zscore().Key(prefix+"online:users").Member(id).Build()).AsFloat64()
	if rueidis.IsRedisNil(err) {
		return 0, false
	}
	if err != nil {
		t.Fatal(err)
	}
	return sc, true
}

// A node that stops heart-beating (crash: no SetUserOffline, no dead mark)
// loses its users on every other node within NodeTimeout + HeartbeatInterval
// although DeviceTTL is an hour.
func testCrashedNode(t *testing.T, newClient newClientFunc) {
	c, prefix := newClient(t)
	ctx := ctxT(t)
	cfg := Config{DeviceTTL: time.Hour, NodeTimeout: 500 * time.Millisecond, HeartbeatInterval: 100 * time.Millisecond}
	a := newState(t, c, prefix, Config{NodeID: "a", DeviceTTL: cfg.DeviceTTL, NodeTimeout: cfg.NodeTimeout, HeartbeatInterval: cfg.HeartbeatInterval})
	b := newState(t, c, prefix, Config{NodeID: "b", DeviceTTL: cfg.DeviceTTL, NodeTimeout: cfg.NodeTimeout, HeartbeatInterval: cfg.HeartbeatInterval})
	if a.Instance() == b.Instance() || !strings.HasPrefix(a.Instance(), "a#") {
		t.Fatalf("instances %q %q", a.Instance(), b.Instance())
	}
	users := []string{"u1", "u2", "u3"}
	lastActivity := map[string]int64{}
	for _, u := range users {
		ch := must[chatstate.PresenceChange](t)(a.SetUserOnline(ctx, u, "phone", "s-"+u))
		lastActivity[u] = ch.After.LastSeen
	}
	// u3 also has a device on b: it must stay online.
	must[chatstate.PresenceChange](t)(b.SetUserOnline(ctx, "u3", "laptop", "s-b"))
	if m := must[map[string]chatstate.Presence](t)(b.Presence(ctx, users...)); !m["u1"].Online || !m["u2"].Online {
		t.Fatalf("before crash: %+v", m)
	}

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- b.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })

	start := time.Now()
	eventually(t, 5*time.Second, "crashed node's users offline on b", func() bool {
		m := must[map[string]chatstate.Presence](t)(b.Presence(ctx, users...))
		return !m["u1"].Online && !m["u2"].Online
	})
	t.Logf("crashed node's users offline after %v", time.Since(start))
	m := must[map[string]chatstate.Presence](t)(b.Presence(ctx, users...))
	if m["u1"].LastSeen != lastActivity["u1"] || m["u1"].Status != chatstate.StatusOffline {
		t.Fatalf("u1 after crash %+v, want lastSeen %d", m["u1"], lastActivity["u1"])
	}
	if !m["u3"].Online || m["u3"].Devices != 1 {
		t.Fatalf("u3 (also on b) %+v", m["u3"])
	}
	page := must[chatstate.OnlineUsersPage](t)(b.OnlineUsers(ctx, 0, 100))
	if fmt.Sprint(page.UserIDs) != "[u3]" {
		t.Fatalf("online users after crash %v", page.UserIDs)
	}
	if !strings.Contains(" "+strings.Join(b.Dead(), " ")+" ", " "+a.Instance()+" ") {
		t.Fatalf("dead set %v lacks %s", b.Dead(), a.Instance())
	}

	// A node restarted under the same NodeID is a new instance: it does not
	// revive its predecessor's devices.
	a2 := newState(t, c, prefix, Config{NodeID: "a", DeviceTTL: cfg.DeviceTTL, NodeTimeout: cfg.NodeTimeout})
	if a2.Instance() == a.Instance() {
		t.Fatal("restart reused the instance id")
	}
	if must[bool](t)(a2.IsUserOnline(ctx, "u1")) {
		t.Fatal("restarted node revived u1")
	}

	// Sweep reports each crash-induced offline once and cleans the index,
	// although the index scores are an hour in the future.
	changes := must[[]chatstate.PresenceChange](t)(b.Sweep(ctx))
	got := map[string]chatstate.PresenceChange{}
	for _, ch := range changes {
		got[ch.After.UserID] = ch
	}
	if len(changes) != 2 || !got["u1"].Changed || !got["u1"].Before.Online || got["u1"].After.Online ||
		got["u2"].After.Online || got["u2"].After.LastSeen != lastActivity["u2"] {
		t.Fatalf("sweep changes %+v", changes)
	}
	for _, u := range []string{"u1", "u2"} {
		if _, ok := indexScore(t, c, prefix, u); ok {
			t.Fatalf("%s still in online:users after sweep", u)
		}
		n := must[int64](t)(c.Do(ctx, c.B().Hexists().Key(prefix+"presence:{u:"+u+"}").Field("d:phone").Build()).AsInt64())
		if n != 0 {
			t.Fatalf("%s dead device not pruned", u)
		}
	}
	if _, ok := indexScore(t, c, prefix, "u3"); !ok {
		t.Fatal("u3 removed from index but online")
	}
	if again := must[[]chatstate.PresenceChange](t)(b.Sweep(ctx)); len(again) != 0 {
		t.Fatalf("second sweep reported %+v", again)
	}
	// A write from a's users' next connection starts from offline.
	ch := must[chatstate.PresenceChange](t)(a2.SetUserOnline(ctx, "u1", "phone", "s-new"))
	if !ch.Changed || ch.Before.Online {
		t.Fatalf("reconnect after crash %+v", ch)
	}
}

// Run marks its instance dead when its ctx ends, so other nodes drop its
// users on their next heartbeat, long before NodeTimeout.
func testGracefulStop(t *testing.T, newClient newClientFunc) {
	c, prefix := newClient(t)
	ctx := ctxT(t)
	a := newState(t, c, prefix, Config{NodeID: "a", NodeTimeout: time.Hour, HeartbeatInterval: 50 * time.Millisecond})
	b := newState(t, c, prefix, Config{NodeID: "b", NodeTimeout: time.Hour})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	must[chatstate.PresenceChange](t)(a.SetUserOnline(ctx, "zed", "phone", "s"))
	ok(t, b.Heartbeat(ctx))
	if !must[bool](t)(b.IsUserOnline(ctx, "zed")) {
		t.Fatal("zed offline while a runs")
	}
	stop()
	ok(t, <-done)
	ok(t, b.Heartbeat(ctx))
	if must[bool](t)(b.IsUserOnline(ctx, "zed")) {
		t.Fatal("zed online after a stopped gracefully")
	}
	// The mark keeps the instance dead until purged, not just once.
	ok(t, b.Heartbeat(ctx))
	if must[bool](t)(b.IsUserOnline(ctx, "zed")) {
		t.Fatal("zed revived on the next heartbeat")
	}
	// A beat a sent before it stopped can reach Redis after the mark, over
	// another pooled connection: it must not bring a back.
	ok(t, a.Heartbeat(ctx))
	ok(t, b.Heartbeat(ctx))
	if must[bool](t)(b.IsUserOnline(ctx, "zed")) {
		t.Fatal("a late beat from the stopped instance revived zed")
	}
	if nodes := must[[]Node](t)(b.Nodes(ctx)); len(nodes) != 1 || nodes[0].Instance != b.Instance() {
		t.Fatalf("live nodes after a left: %+v", nodes)
	}
}

func testSweepExpired(t *testing.T, newClient newClientFunc) {
	c, prefix := newClient(t)
	ctx := ctxT(t)
	// 1 s, not less: the sweep "before expiry" below must run within it even
	// on a loaded machine.
	s := newState(t, c, prefix, Config{DeviceTTL: time.Second})
	must[chatstate.PresenceChange](t)(s.SetUserOnline(ctx, "vis", "d", "s"))
	must[chatstate.PresenceChange](t)(s.SetUserOnline(ctx, "inv", "d", "s"))
	must[chatstate.PresenceChange](t)(s.UpdateUserStatus(ctx, "inv", chatstate.StatusInvisible))
	if ch := must[[]chatstate.PresenceChange](t)(s.Sweep(ctx)); len(ch) != 0 {
		t.Fatalf("sweep before expiry reported %+v", ch)
	}
	eventually(t, 5*time.Second, "index scores pass", func() bool {
		sc1, _ := indexScore(t, c, prefix, "vis")
		sc2, _ := indexScore(t, c, prefix, "inv")
		now := float64(redisNow(t, c))
		return sc1 < now && sc2 < now && !must[bool](t)(s.IsUserOnline(ctx, "vis"))
	})
	changes := must[[]chatstate.PresenceChange](t)(s.Sweep(ctx))
	if len(changes) != 1 || changes[0].After.UserID != "vis" || changes[0].After.Online || !changes[0].Before.Online {
		t.Fatalf("sweep changes %+v (the invisible user's expiry is no public change)", changes)
	}
	n := must[int64](t)(c.Do(ctx, c.B().Zcard().Key(prefix+"online:users").Build()).AsInt64())
	if n != 0 {
		t.Fatalf("online:users keeps %d stale members", n)
	}
	// The hash survives with status and last seen.
	if p := presenceOf(t, s, "vis"); p.LastSeen == 0 {
		t.Fatalf("lastSeen lost: %+v", p)
	}
}

// Every script touches exactly one key (KEYS[1]), so it is cluster safe,
// and documents its KEYS and ARGV. The node scripts also touch nodeinfo,
// which shares the nodes key's slot (keys.TestSameSlot). A per-key script
// (KEYS[i]) treats each key alone and runs through luascript.PerKey, which
// gives it one key per call on a Cluster.
func TestScriptsSingleKey(t *testing.T) {
	scripts := Scripts()
	if len(scripts) != len(allScripts) || len(scripts) < 10 {
		t.Fatalf("Scripts() has %d entries", len(scripts))
	}
	twoKeys := map[string]bool{"node_heartbeat": true, "node_list": true}
	perKey := map[string]bool{"presence_get": true}
	keyRef := regexp.MustCompile(`KEYS\[(\d+)\]`)
	for name, src := range scripts {
		for _, m := range keyRef.FindAllStringSubmatch(src, -1) {
			if m[1] != "1" && !(m[1] == "2" && twoKeys[name]) {
				t.Errorf("%s references KEYS[%s]", name, m[1])
			}
		}
		if twoKeys[name] && !strings.Contains(src, "-- KEYS[2]") {
			t.Errorf("%s lacks its KEYS[2] header", name)
		}
		if perKey[name] {
			if !strings.Contains(src, "-- KEYS[i]") || !strings.Contains(src, "for i = 1, #KEYS do") {
				t.Errorf("%s is per key but lacks its KEYS[i] header or loop", name)
			}
			continue
		}
		if !strings.Contains(src, "-- KEYS[1]") || !strings.Contains(src, "Reply") {
			t.Errorf("%s lacks a KEYS/Reply header", name)
		}
	}
}
