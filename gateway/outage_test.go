package gateway

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/redisconn"
	"github.com/chatstate/chatstate/internal/redistest"
)

// unavailableAck fails t unless ack refuses with unavailable and a retry hint.
func unavailableAck(t *testing.T, what string, ack map[string]any) {
	t.Helper()
	e, _ := ack["error"].(map[string]any)
	if ack["ok"] != false || e["code"] != chatstate.EUNAVAILABLE || e["retryAfterMs"] == nil || e["retryAfterMs"].(float64) <= 0 {
		t.Fatalf("%s: ack %v, want unavailable with retryAfterMs", what, ack)
	}
}

// A hung Redis (connections open, nothing answered) must not hold an ack
// past the event deadline: every event is refused unavailable within it, and
// works again once Redis answers, with nothing to restart. A stopped Redis
// (connections refused) is refused at once.
func TestAcksWithinDeadlineWhenRedisHangsOrStops(t *testing.T) {
	srv := redistest.StartServer(t)
	// The server's own client options (bounded retries), as serve uses them.
	client, err := redisconn.Open(redistest.Ctx(t), redisconn.Config{Host: "127.0.0.1", Port: strconv.Itoa(srv.Port)}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	prefix := redistest.Prefix(t)
	n := startNodeWith(t, client, openStore(t), prefix, Config{NodeID: "a", EventTimeout: time.Second, MessageRateLimit: 1000})
	if _, err := n.dir.CreateConversation(context.Background(), chatstate.Conversation{ID: "c1", Members: []string{"alice", "bob"}}); err != nil {
		t.Fatal(err)
	}
	alice := connectUser(t, n, "alice")
	send := func(cmid string) map[string]any {
		return alice.emit("message:send", map[string]any{"conversationId": "c1", "clientMessageId": cmid, "content": "hi"})
	}
	if ack := send("m1"); ack["ok"] != true {
		t.Fatalf("send: %v", ack)
	}

	srv.Freeze(t)
	// emit itself fails the test when no ack comes within 5 s.
	unavailableAck(t, "send, Redis hung", send("m2"))
	unavailableAck(t, "sync, Redis hung", alice.emit("messages:sync", map[string]any{"conversationId": "c1"}))
	unavailableAck(t, "presence, Redis hung", alice.emit("presence:get", map[string]any{"userIds": []string{"bob"}}))
	srv.Thaw(t)
	var ack map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for ack = send("m2"); ack["ok"] != true; ack = send("m2") {
		if time.Now().After(deadline) {
			t.Fatalf("send after Redis answered again: %v", ack)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}

	srv.Stop()
	start := time.Now()
	unavailableAck(t, "send, Redis stopped", send("m3"))
	unavailableAck(t, "typing, Redis stopped", alice.emit("typing:start", map[string]any{"conversationId": "c1"}))
	t.Logf("refusals with Redis stopped took %v", time.Since(start))
}
