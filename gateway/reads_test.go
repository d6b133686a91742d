package gateway

import (
	"fmt"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/redistest"
)

// Read receipts across two nodes: the other members and the reader's other
// device get them, the reading socket does not; reads within the interval
// merge into one later receipt; sync carries every member's position and
// the list's unread counts follow.
func TestReadReceiptsAcrossNodes(t *testing.T) {
	client, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	store := openStore(t)
	interval := func(c *Config) { c.ReceiptInterval = time.Second }
	a, b := startNode(t, client, store, prefix, "a", interval), startNode(t, client, store, prefix, "b", interval)
	if _, err := a.dir.CreateConversation(ctx, chatstate.Conversation{ID: "c1", Members: []string{"alice", "bob", "carol"}}); err != nil {
		t.Fatal(err)
	}
	phone, tablet := connectDevice(t, a, "alice", "phone", nil), connectDevice(t, b, "alice", "tablet", nil)
	bob, carol, dave := connectUser(t, b, "bob"), connectUser(t, a, "carol"), connectUser(t, b, "dave")
	send := func(c *testClient, n int) {
		t.Helper()
		ack := c.emit("message:send", map[string]any{"conversationId": "c1", "clientMessageId": fmt.Sprintf("m%d", n), "content": "hi"})
		if ack["ok"] != true {
			t.Fatalf("send: %v", ack)
		}
	}
	read := func(c *testClient, seq any) map[string]any {
		t.Helper()
		return c.emit("message:read", map[string]any{"conversationId": "c1", "seq": seq})
	}
	isReceipt := func(seq float64) func(map[string]any) bool {
		return func(m map[string]any) bool {
			return m["conversationId"] == "c1" && m["userId"] == "alice" && m["seq"] == seq
		}
	}
	send(bob, 1)
	send(bob, 2)
	if ack := read(phone, 2); ack["ok"] != true || ack["readSeq"] != float64(2) {
		t.Fatalf("read 2: %v", ack)
	}
	bob.waitEvent("receipt", isReceipt(2))
	carol.waitEvent("receipt", isReceipt(2))
	tablet.waitEvent("receipt", isReceipt(2))

	// Within the interval: acked at once, announced once, later.
	send(bob, 3)
	if ack := read(phone, 3); ack["readSeq"] != float64(3) {
		t.Fatalf("read 3: %v", ack)
	}
	if ack := read(phone, 99); ack["readSeq"] != float64(3) {
		t.Fatalf("read past the last seq: %v, want capped at 3", ack)
	}
	if ack := read(tablet, 1); ack["readSeq"] != float64(3) {
		t.Fatalf("read back from the other device: %v, want 3 (never back)", ack)
	}
	bob.waitEvent("receipt", isReceipt(3))
	tablet.waitEvent("receipt", isReceipt(3))

	// Barrier: anything published to these users before has arrived.
	for _, u := range []string{"alice", "bob", "dave"} {
		must(t, a.gw.BroadcastToUser(ctx, u, "barrier", map[string]any{}))
	}
	for _, c := range []*testClient{phone, bob, dave} {
		c.waitEvent("barrier", nil)
	}
	// The held-back receipt excludes no socket, so the phone gets seq 3
	// too, unless this machine stalled past the interval between the
	// reads (then 3 went at once, without the phone).
	for _, r := range phone.received("receipt") {
		if !isReceipt(3)(r) {
			t.Errorf("the reading phone got receipt %v, want none for its own immediate reads", r)
		}
	}
	if got := bob.received("receipt"); len(got) != 2 {
		t.Errorf("bob got receipts %v, want exactly seq 2 and seq 3", got)
	}
	if got := dave.received("receipt"); len(got) != 0 {
		t.Errorf("a non-member got receipts %v", got)
	}

	sync := carol.emit("messages:sync", map[string]any{"conversationId": "c1", "afterSeq": 0})
	reads, _ := sync["reads"].(map[string]any)
	if len(reads) != 3 || reads["alice"] != float64(3) || reads["bob"] != float64(3) || reads["carol"] != float64(0) {
		t.Fatalf("sync reads %v, want alice 3, bob 3 (his own messages), carol 0", sync["reads"])
	}
	list := func(c *testClient) map[string]any {
		t.Helper()
		ack := c.emit("conversations:list", map[string]any{})
		convs, _ := ack["conversations"].([]any)
		if ack["ok"] != true || len(convs) != 1 || ack["cursor"] != nil {
			t.Fatalf("conversations:list: %v", ack)
		}
		return convs[0].(map[string]any)
	}
	if c := list(carol); c["id"] != "c1" || c["unread"] != float64(3) || c["lastSeq"] != float64(3) || c["readSeq"] != float64(0) ||
		c["lastMessage"].(map[string]any)["seq"] != float64(3) || len(c["members"].([]any)) != 3 {
		t.Fatalf("carol's entry %v", c)
	}
	if c := list(tablet); c["unread"] != float64(0) || c["readSeq"] != float64(3) {
		t.Fatalf("alice's entry %v", c)
	}

	if ack := read(dave, 1); ack["ok"] != false || ack["error"].(map[string]any)["code"] != chatstate.EFORBIDDEN {
		t.Fatalf("non-member read: %v", ack)
	}
	for _, bad := range []any{0, -1, "x", nil} {
		if ack := read(phone, bad); ack["ok"] != false || ack["error"].(map[string]any)["code"] != chatstate.EINVALID {
			t.Fatalf("read seq %v: %v", bad, ack)
		}
	}
	if ack := dave.emit("conversations:list", map[string]any{"cursor": "nope"}); ack["ok"] != false {
		t.Fatalf("bad cursor: %v", ack)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A member added to a conversation starts with its history read: the list
// shows no unread for the messages from before the join, and counts the
// ones after it.
func TestAddedMemberStartsRead(t *testing.T) {
	client, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	n := startNode(t, client, openStore(t), prefix, "a")
	if _, err := n.dir.CreateConversation(ctx, chatstate.Conversation{ID: "c1", Members: []string{"alice", "bob"}}); err != nil {
		t.Fatal(err)
	}
	alice := connectUser(t, n, "alice")
	for i := range 3 {
		if ack := alice.emit("message:send", map[string]any{"conversationId": "c1", "clientMessageId": fmt.Sprint("old", i), "content": "before"}); ack["ok"] != true {
			t.Fatalf("send: %v", ack)
		}
	}
	if _, _, err := n.gw.ChangeMembers(ctx, "c1", "", "", chatstate.MembersChange{Added: []string{"carol"}}); err != nil {
		t.Fatal(err)
	}
	if ack := alice.emit("message:send", map[string]any{"conversationId": "c1", "clientMessageId": "new", "content": "after"}); ack["ok"] != true {
		t.Fatalf("send: %v", ack)
	}
	carol := connectUser(t, n, "carol")
	list := carol.emit("conversations:list", map[string]any{})
	convs, _ := list["conversations"].([]any)
	if len(convs) != 1 {
		t.Fatalf("carol's list %v", list)
	}
	c := convs[0].(map[string]any)
	if c["unread"] != float64(1) || c["readSeq"] != float64(4) {
		t.Fatalf("carol's entry %v: want unread 1 (only the message after the join), readSeq 4 (the members entry)", c)
	}
}
