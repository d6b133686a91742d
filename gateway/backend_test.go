package gateway

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/redistest"
)

type recordingNotifier struct {
	mu   sync.Mutex
	sent []chatstate.Message
}

func (n *recordingNotifier) MessageSent(msg chatstate.Message, members, _ []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sent = append(n.sent, msg)
}

func (n *recordingNotifier) count() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.sent)
}

// A backend send from a non-member bot takes the socket send's seq and
// idempotency and reaches every member's devices on both nodes; a resend
// returns the original and delivers nothing.
func TestSendAsAcrossNodes(t *testing.T) {
	client, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	store := openStore(t)
	notes := &recordingNotifier{}
	a := startNodeWith(t, client, store, prefix, Config{NodeID: "a"})
	a.gw.deps.Notifier = notes
	b := startNode(t, client, store, prefix, "b")
	if _, err := a.dir.CreateConversation(ctx, chatstate.Conversation{ID: "c1", Members: []string{"alice", "bob"}}); err != nil {
		t.Fatal(err)
	}
	alice := connectUser(t, a, "alice")
	bob := connectUser(t, b, "bob")

	msg, dup, err := a.gw.SendAs(ctx, chatstate.Message{ConversationID: "c1", SenderID: "bot", ClientMessageID: "b1", Content: "welcome", Type: "system"})
	if err != nil || dup {
		t.Fatalf("SendAs: %v dup=%v", err, dup)
	}
	if msg.Seq != 1 || msg.SenderID != "bot" || msg.Type != "system" || msg.ID == "" {
		t.Fatalf("SendAs stored %+v", msg)
	}
	for _, c := range []*testClient{alice, bob} {
		got := c.waitEvent("message:new", nil)["message"].(map[string]any)
		if got["id"] != msg.ID || got["seq"] != float64(1) || got["content"] != "welcome" {
			t.Fatalf("delivered %v, sent %+v", got, msg)
		}
	}
	if notes.count() != 1 {
		t.Fatalf("notifier told %d times, want 1", notes.count())
	}
	again, dup, err := b.gw.SendAs(ctx, chatstate.Message{ConversationID: "c1", SenderID: "bot", ClientMessageID: "b1", Content: "welcome", Type: "system"})
	if err != nil || !dup || again.ID != msg.ID || again.Seq != 1 {
		t.Fatalf("resend: %+v dup=%v %v; want the original", again, dup, err)
	}
	// A socket send after it takes the next seq; once bob has it, he would
	// have had a second copy of the bot message before.
	ack := alice.emit("message:send", map[string]any{"conversationId": "c1", "clientMessageId": "m1", "content": "hi"})
	if ack["ok"] != true || ack["message"].(map[string]any)["seq"] != float64(2) {
		t.Fatalf("socket send after a backend send: %v", ack)
	}
	bob.waitEvent("message:new", func(m map[string]any) bool { return m["message"].(map[string]any)["seq"] == float64(2) })
	if n := len(bob.received("message:new")); n != 2 {
		t.Fatalf("bob got %d message:new, want 2 (the resend delivers nothing)", n)
	}
	if notes.count() != 2 {
		t.Fatalf("notifier told %d times, want 2", notes.count())
	}

	for _, tc := range []struct {
		msg  chatstate.Message
		code string
	}{
		{chatstate.Message{ConversationID: "nope", SenderID: "bot", ClientMessageID: "x", Content: "x"}, chatstate.ENOTFOUND},
		{chatstate.Message{ConversationID: "c1", SenderID: "", ClientMessageID: "x", Content: "x"}, chatstate.EINVALID},
		{chatstate.Message{ConversationID: "c1", SenderID: "bot", ClientMessageID: "", Content: "x"}, chatstate.EINVALID},
		{chatstate.Message{ConversationID: "c1", SenderID: "bot", ClientMessageID: "x", Content: ""}, chatstate.EINVALID},
		{chatstate.Message{ConversationID: "c1", SenderID: "bot", ClientMessageID: "x", Content: "x", Type: chatstate.TypeSkip}, chatstate.EINVALID},
		{chatstate.Message{ConversationID: "c1", SenderID: "bot", ClientMessageID: "x", Content: strings.Repeat("x", 17<<10)}, chatstate.ETOOLARGE},
		{chatstate.Message{ConversationID: "bad id", SenderID: "bot", ClientMessageID: "x", Content: "x"}, chatstate.EINVALID},
	} {
		if _, _, err := a.gw.SendAs(ctx, tc.msg); chatstate.ErrorCode(err) != tc.code {
			t.Errorf("SendAs(%+v): %v, want %s", tc.msg, err, tc.code)
		}
	}
}

// Custom events reach every device on any node; reserved and malformed
// ones are refused before anything is published.
func TestEmitCustomEvents(t *testing.T) {
	client, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	store := openStore(t)
	a, b := startNode(t, client, store, prefix, "a"), startNode(t, client, store, prefix, "b")
	if _, err := a.dir.CreateConversation(ctx, chatstate.Conversation{ID: "c1", Members: []string{"alice", "bob"}}); err != nil {
		t.Fatal(err)
	}
	alice := connectUser(t, a, "alice")
	bob := connectUser(t, b, "bob")
	if err := a.gw.EmitToUser(ctx, "bob", "app:ping", json.RawMessage(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	if got := bob.waitEvent("app:ping", nil); got["n"] != float64(1) {
		t.Fatalf("bob got %v", got)
	}
	if err := b.gw.EmitToConversation(ctx, "c1", "app.refresh", json.RawMessage(`{"what":"list"}`)); err != nil {
		t.Fatal(err)
	}
	alice.waitEvent("app.refresh", nil)
	bob.waitEvent("app.refresh", nil)
	if err := a.gw.EmitToConversation(ctx, "nope", "app:x", nil); chatstate.ErrorCode(err) != chatstate.ENOTFOUND {
		t.Errorf("unknown conversation: %v", err)
	}
	if err := a.gw.EmitToUser(ctx, "bob", "message:new", json.RawMessage(`{}`)); chatstate.ErrorCode(err) != chatstate.EINVALID {
		t.Errorf("reserved event: %v", err)
	}
	// Barrier: nothing refused reached bob.
	a.gw.EmitToUser(ctx, "bob", "app:barrier", nil)
	bob.waitEvent("app:barrier", nil)
	if n := len(bob.received("message:new")); n != 0 {
		t.Fatalf("a refused event reached bob %d times", n)
	}
}

func TestValidateCustomEvent(t *testing.T) {
	for _, name := range []string{"app:ping", "order.updated", "a", "x-y_z", strings.Repeat("e", MaxEventNameLen)} {
		if err := ValidateCustomEvent(name, json.RawMessage(`{"a":1}`)); err != nil {
			t.Errorf("%q refused: %v", name, err)
		}
	}
	for _, name := range []string{
		"", strings.Repeat("e", MaxEventNameLen+1), "has space", "ümlaut", "a/b", "a\x00",
		"message:new", "typing", "presence", "resync", "receipt", "token:expired", "server:draining",
		"notification:new", "session:revoked", "message:edited", "session:x", "messages:sync",
		"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener",
	} {
		if err := ValidateCustomEvent(name, nil); chatstate.ErrorCode(err) != chatstate.EINVALID {
			t.Errorf("%q: %v, want invalid", name, err)
		}
	}
	big := json.RawMessage(`"` + strings.Repeat("x", MaxEventDataBytes) + `"`)
	if err := ValidateCustomEvent("app:big", big); chatstate.ErrorCode(err) != chatstate.ETOOLARGE {
		t.Errorf("data over the limit: %v", err)
	}
	if err := ValidateCustomEvent("app:bad", json.RawMessage(`{`)); chatstate.ErrorCode(err) != chatstate.EINVALID {
		t.Errorf("data not JSON: %v", err)
	}
}

func TestPresenceOf(t *testing.T) {
	client, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	a := startNode(t, client, openStore(t), prefix, "a")
	connectUser(t, a, "alice")
	got, err := a.gw.PresenceOf(ctx, []string{"alice", "ghost", "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !got["alice"].Online || got["alice"].Devices != 1 || got["ghost"].Online {
		t.Fatalf("PresenceOf = %+v", got)
	}
	ids := make([]string, 501)
	for i := range ids {
		ids[i] = fmt.Sprintf("u%d", i)
	}
	if _, err := a.gw.PresenceOf(ctx, ids); chatstate.ErrorCode(err) != chatstate.ETOOLARGE {
		t.Fatalf("501 ids: %v, want too_large", err)
	}
}
