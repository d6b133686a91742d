package gateway

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/cache"
	"github.com/chatstate/chatstate/directory"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/chatstate/chatstate/messaging"
	"github.com/chatstate/chatstate/presence"
	"github.com/chatstate/chatstate/sqlitestore"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/rueidis"
)

func TestMain(m *testing.M) { os.Exit(redistest.Run(m)) }

var testSecret = []byte("gateway-test-secret")

// node is one gateway with its services, served by httptest.
type node struct {
	gw    *Gateway
	dir   *directory.Directory
	cache *cache.Cache
	url   string
}

// openStore opens one SQLite store shared by the nodes of a test.
func openStore(t *testing.T) *sqlitestore.Store {
	t.Helper()
	store, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "db.sqlite"), sqlitestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close(context.Background()) })
	return store
}

// startNode starts a gateway; opts adjust its Config.
func startNode(t *testing.T, client rueidis.Client, store *sqlitestore.Store, prefix, id string, opts ...func(*Config)) *node {
	t.Helper()
	cfg := Config{NodeID: id}
	for _, o := range opts {
		o(&cfg)
	}
	return startNodeWith(t, client, store, prefix, cfg)
}

// startNodeWith is startNode with cfg (KeyPrefix is set from prefix).
func startNodeWith(t *testing.T, client rueidis.Client, store *sqlitestore.Store, prefix string, cfg Config) *node {
	t.Helper()
	return startNodeDeps(t, client, store, prefix, cfg, nil)
}

// startNodeDeps is startNodeWith with deps adjusted by wrap (when set).
func startNodeDeps(t *testing.T, client rueidis.Client, store *sqlitestore.Store, prefix string, cfg Config, wrap func(*Deps)) *node {
	t.Helper()
	id := cfg.NodeID
	cfg.KeyPrefix = prefix
	v, _ := NewVerifier(testSecret, nil)
	state := presence.New(client, presence.Config{KeyPrefix: prefix, NodeID: id})
	ctx := redistest.Ctx(t)
	if err := state.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	c := cache.New(client, cache.Config{KeyPrefix: prefix})
	dir := directory.New(client, store, c, directory.Config{KeyPrefix: prefix})
	msgs := messaging.New(c, store, messaging.Config{Reads: store, Members: dir.Members})
	go msgs.Run(ctx)
	deps := Deps{
		Redis: client, State: state, Cache: c, Messages: msgs, LastSeen: store,
		Directory: dir, Verifier: v, Reads: msgs,
	}
	if wrap != nil {
		wrap(&deps)
	}
	gw := New(cfg, deps)
	if err := gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw.Handler())
	t.Cleanup(func() { gw.Close(); srv.Close() })
	return &node{gw: gw, dir: dir, cache: c, url: srv.URL}
}

// onStandaloneAndCluster runs fn on a standalone Redis and on a 3-master
// Cluster.
func onStandaloneAndCluster(t *testing.T, fn func(t *testing.T, client rueidis.Client, prefix string)) {
	t.Run("standalone", func(t *testing.T) {
		client, prefix := redistest.Start(t)
		fn(t, client, prefix)
	})
	t.Run("cluster", func(t *testing.T) {
		client, prefix := redistest.StartClusterClient(t)
		fn(t, client, prefix)
	})
}

// unthrottled lifts the send and event rate limits, for bursts.
func unthrottled(c *Config) { c.MessageRateLimit, c.EventRate, c.EventBurst = 10000, 10000, 10000 }

func connectUser(t *testing.T, n *node, user string) *testClient {
	t.Helper()
	return connectDevice(t, n, user, "d1", nil)
}

func TestBroadcastMethodsAcrossNodes(t *testing.T) {
	client, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	store := openStore(t)
	a, b := startNode(t, client, store, prefix, "a"), startNode(t, client, store, prefix, "b")
	if _, err := a.dir.CreateConversation(ctx, chatstate.Conversation{ID: "c1", Members: []string{"alice", "bob"}}); err != nil {
		t.Fatal(err)
	}
	if err := a.dir.SetFriends(ctx, "alice", []string{"bob"}); err != nil {
		t.Fatal(err)
	}
	alice := connectUser(t, a, "alice")
	bob := connectUser(t, b, "bob")
	carol := connectUser(t, b, "carol")

	if err := a.gw.BroadcastToUser(ctx, "bob", "note", map[string]any{"n": 1}); err != nil {
		t.Fatal(err)
	}
	bob.waitEvent("note", nil)
	if err := b.gw.BroadcastToConversation(ctx, "c1", "conv", map[string]any{"n": 2}); err != nil {
		t.Fatal(err)
	}
	alice.waitEvent("conv", nil)
	bob.waitEvent("conv", nil)
	if err := a.gw.BroadcastToFriends(ctx, "alice", "friendly", map[string]any{"n": 3}); err != nil {
		t.Fatal(err)
	}
	bob.waitEvent("friendly", nil)

	// Barrier: a later event to each of alice and carol arrives after
	// anything published to them before.
	a.gw.BroadcastToUser(ctx, "alice", "barrier", map[string]any{})
	b.gw.BroadcastToUser(ctx, "carol", "barrier", map[string]any{})
	alice.waitEvent("barrier", nil)
	carol.waitEvent("barrier", nil)
	if n := len(alice.received("friendly")); n != 0 {
		t.Errorf("alice got her own friends broadcast %d times", n)
	}
	for _, ev := range []string{"note", "conv", "friendly"} {
		if n := len(carol.received(ev)); n != 0 {
			t.Errorf("carol got %s %d times", ev, n)
		}
	}
	// A chat message through the same nodes: durable ack, then delivery.
	ack := alice.emit("message:send", map[string]any{"conversationId": "c1", "clientMessageId": "m1", "content": "hi"})
	if ack["ok"] != true {
		t.Fatalf("send ack: %v", ack)
	}
	msg := ack["message"].(map[string]any)
	got := bob.waitEvent("message:new", nil)["message"].(map[string]any)
	if got["id"] != msg["id"] || got["seq"] != float64(1) || got["content"] != "hi" {
		t.Fatalf("bob got %v, alice's ack says %v", got, msg)
	}
	if nack := carol.emit("message:send", map[string]any{"conversationId": "c1", "clientMessageId": "m2", "content": "x"}); nack["ok"] != false {
		t.Fatalf("non-member send: %v", nack)
	}
	if err := a.gw.BroadcastToConversation(ctx, "nope", "x"); chatstate.ErrorCode(err) != chatstate.ENOTFOUND {
		t.Errorf("unknown conversation: %v", err)
	}
	if err := a.gw.BroadcastToUser(ctx, "bad id", "x"); chatstate.ErrorCode(err) != chatstate.EINVALID {
		t.Errorf("bad user id: %v", err)
	}
}

// After Redis restarts, the node resubscribes, counts and logs the gap, and
// tells its clients to resync; delivery works again.
func TestPubSubRestoredAfterRedisRestart(t *testing.T) {
	srv := redistest.StartServer(t)
	client := srv.Client(t)
	prefix := redistest.Prefix(t)
	ctx := redistest.Ctx(t)
	store := openStore(t)
	a, b := startNode(t, client, store, prefix, "a"), startNode(t, client, store, prefix, "b")
	bob := connectUser(t, a, "bob")
	if err := b.gw.BroadcastToUser(ctx, "bob", "before", map[string]any{}); err != nil {
		t.Fatal(err)
	}
	bob.waitEvent("before", nil)

	srv.Restart(t)
	bob.waitEvent("resync", func(m map[string]any) bool { return m["reason"] == "redis_reconnect" })
	var m dto.Metric
	a.gw.m.pubsubReconnects.Write(&m)
	if n := m.GetCounter().GetValue(); n < 1 {
		t.Fatalf("pubsub reconnects metric %v, want >= 1", n)
	}
	// Redis lost its data; the node registers its sockets' presence again.
	state := presence.New(client, presence.Config{KeyPrefix: prefix, NodeID: "reader"})
	deadline := time.Now().Add(5 * time.Second)
	for online, _ := state.IsUserOnline(ctx, "bob"); !online; online, _ = state.IsUserOnline(ctx, "bob") {
		if time.Now().After(deadline) {
			t.Fatal("bob's presence was not registered again after the restart")
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	// Delivery resumes: poll, since node b's own client reconnects lazily.
	deadline = time.Now().Add(5 * time.Second)
	for len(bob.received("after")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no delivery after the Redis restart")
		}
		b.gw.BroadcastToUser(context.Background(), "bob", "after", map[string]any{})
		select {
		case <-bob.notify:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// A socket that floods events is throttled in process (no Redis work) with
// rate_limited and a retry hint; other sockets are unaffected.
func TestEventRateLimitPerSocket(t *testing.T) {
	client, prefix := redistest.Start(t)
	n := startNode(t, client, openStore(t), prefix, "a")
	flood := connectUser(t, n, "flooder")
	calm := connectUser(t, n, "calm")
	var ok, limited int
	for i := 0; i < 100; i++ {
		ack := flood.emit("presence:get", map[string]any{"userIds": []string{"calm"}})
		if ack["ok"] == true {
			ok++
			continue
		}
		e := ack["error"].(map[string]any)
		if e["code"] != "rate_limited" || e["retryAfterMs"].(float64) <= 0 {
			t.Fatalf("unexpected refusal %v", ack)
		}
		limited++
	}
	if ok < 60 || limited == 0 {
		t.Fatalf("%d allowed, %d limited: want the burst of 60 allowed, then limits", ok, limited)
	}
	if ack := calm.emit("presence:get", map[string]any{"userIds": []string{"flooder"}}); ack["ok"] != true {
		t.Fatalf("another socket must not be limited: %v", ack)
	}
}
