package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/leaktest"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/chatstate/chatstate/presence"
	"github.com/gorilla/websocket"
)

func waitClosed(t *testing.T, c *testClient) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("connection not closed within 10s")
	}
}

// A drain: the in-flight send is acked before its socket closes, the client
// is told to reconnect and gets a transport close (not a socket.io
// DISCONNECT), new handshakes are refused, and the user's presence stays
// online, so the reconnect on another node is invisible to her friends.
func TestDrainAcksInFlightAndKeepsPresence(t *testing.T) {
	client, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	store := openStore(t)
	a := startNode(t, client, store, prefix, "a", func(c *Config) {
		c.HoldAckUntilDrain = "held"
		c.DrainGrace = time.Millisecond
	})
	b := startNode(t, client, store, prefix, "b")
	for u, f := range map[string]string{"alice": "bob", "bob": "alice"} {
		if err := a.dir.SetFriends(ctx, u, []string{f}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.dir.CreateConversation(ctx, chatstate.Conversation{ID: "c1", Members: []string{"alice", "bob"}}); err != nil {
		t.Fatal(err)
	}
	bob := connectUser(t, b, "bob")
	alice := connectUser(t, a, "alice")
	other := connectUser(t, a, "carol")
	bob.waitEvent("presence", func(m map[string]any) bool { return m["userId"] == "alice" && m["online"] == true })

	ack := alice.emitAsync("message:send", map[string]any{"conversationId": "c1", "clientMessageId": "m1", "content": "held"})
	// Stored and published: only the ack is held.
	bob.waitEvent("message:new", nil)
	drained := make(chan struct{})
	go func() { a.gw.Drain(context.Background(), 200*time.Millisecond); close(drained) }()

	waitClosed(t, alice)
	select {
	case raw := <-ack:
		var m map[string]any
		json.Unmarshal(raw, &m)
		if m["ok"] != true {
			t.Fatalf("in-flight send acked with %s", raw)
		}
	default:
		t.Fatal("the socket closed before the in-flight ack was written")
	}
	ev := alice.waitEvent(drainEvent, nil)
	if ev["reconnect"] != true || ev["reason"] != "shutdown" {
		t.Fatalf("%s: %v", drainEvent, ev)
	}
	if alice.disconnects != 0 {
		t.Fatal("a drained client got a socket.io DISCONNECT: socket.io-client would not reconnect")
	}
	if !a.gw.Draining() {
		t.Fatal("Draining() is false during the drain")
	}
	url := "ws" + strings.TrimPrefix(a.url, "http") + "/socket.io/?EIO=4&transport=websocket"
	if _, res, err := websocket.DefaultDialer.Dial(url, nil); err == nil || res == nil || res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("handshake during the drain: %v %v, want 503", res, err)
	}
	waitClosed(t, other)
	select {
	case <-drained:
	case <-time.After(10 * time.Second):
		t.Fatal("Drain did not return")
	}
	a.gw.Close() // every OnDisconnect has run

	reader := presence.New(client, presence.Config{KeyPrefix: prefix, NodeID: "reader"})
	if online, err := reader.IsUserOnline(ctx, "alice"); err != nil || !online {
		t.Fatalf("drained alice online=%v %v, want her presence kept for the reconnect", online, err)
	}
	connectUser(t, b, "alice") // same device, now on b
	// Pub/Sub keeps the order of one Redis: a presence published by a's
	// disconnects arrives before this barrier.
	if err := b.gw.BroadcastToUser(ctx, "bob", "barrier", map[string]any{}); err != nil {
		t.Fatal(err)
	}
	bob.waitEvent("barrier", nil)
	for _, p := range bob.received("presence") {
		if p["userId"] == "alice" && p["online"] != true {
			t.Fatalf("bob saw alice go offline across the drain: %v", p)
		}
	}
	got := bob.emit("presence:get", map[string]any{"userIds": []string{"alice"}})
	if p := got["presence"].(map[string]any)["alice"].(map[string]any); p["online"] != true || p["devices"] != float64(1) {
		t.Fatalf("alice after moving: %v", p)
	}
}

// gatewayPkgs are the packages whose goroutines a closed gateway must not
// leave behind.
var gatewayPkgs = []string{"github.com/chatstate/chatstate/gateway", "github.com/chatstate/chatstate/socketio"}

// Close joins every goroutine the gateway started: the subscriber loop
// (here after a Pub/Sub reconnect, so a resync ran), the activity refresher,
// typing timers and the sockets' own goroutines, with or without a drain.
func TestCloseJoinsGoroutines(t *testing.T) {
	for _, drain := range []bool{false, true} {
		t.Run("drain="+strconv.FormatBool(drain), func(t *testing.T) {
			srv := redistest.StartServer(t)
			client := srv.Client(t)
			prefix := redistest.Prefix(t)
			ctx := redistest.Ctx(t)
			n := startNode(t, client, openStore(t), prefix, "a", func(c *Config) {
				c.ActivityInterval = 20 * time.Millisecond
				c.TypingTTL = 30 * time.Millisecond
				c.DrainGrace = time.Millisecond
			})
			if _, err := n.dir.CreateConversation(ctx, chatstate.Conversation{ID: "c1", Members: []string{"alice", "bob"}}); err != nil {
				t.Fatal(err)
			}
			alice, bob := connectUser(t, n, "alice"), connectUser(t, n, "bob")
			if got := alice.emit("typing:start", map[string]any{"conversationId": "c1"}); got["ok"] != true {
				t.Fatal(got)
			}
			bob.waitEvent("typing", nil)
			// Drop the subscriber's connection: the loop reconnects and
			// starts a resync.
			if err := client.Do(ctx, client.B().ClientKill().TypePubsub().Build()).Error(); err != nil {
				t.Fatal(err)
			}
			alice.waitEvent("resync", nil)
			alice.emit("typing:start", map[string]any{"conversationId": "c1"})
			if len(leaktest.Running(gatewayPkgs...)) == 0 {
				t.Fatal("no gateway goroutine seen before Close: the leak check sees nothing")
			}
			if drain {
				n.gw.Drain(ctx, 50*time.Millisecond)
			}
			n.gw.Close()
			select {
			case <-n.gw.hub.done:
			default:
				t.Fatal("Close returned before the subscriber loop ended")
			}
			if n.gw.tasks.add() {
				t.Fatal("a task can start after Close")
			}
			waitClosed(t, alice)
			waitClosed(t, bob)
			// Socket goroutines end with their connections; poll for them.
			leaktest.Wait(t, 10*time.Second, gatewayPkgs...)
		})
	}
}
