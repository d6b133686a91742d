package gateway

import (
	"fmt"
	"testing"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/keys"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/redis/rueidis"
)

// Two gateway nodes on a 3-master Redis Cluster. Each node subscribes on
// one dedicated connection (to whichever master rueidis picks), while
// message:send PUBLISHes from inside message_add.lua on the master that owns
// the conversation's slot: classic Pub/Sub is forwarded over the cluster
// bus, so delivery must not depend on which master that is.
func TestCrossNodeDeliveryOnCluster(t *testing.T) {
	client, prefix := redistest.StartClusterClient(t)
	ctx := redistest.Ctx(t)
	store := openStore(t)
	a, b := startNode(t, client, store, prefix, "a"), startNode(t, client, store, prefix, "b")

	// Conversations whose keys live on every master.
	owner := slotOwners(t, client)
	var convs []string
	owners := map[string]bool{}
	for i := 0; len(owners) < 3 || len(convs) < 6; i++ {
		if i > 100 {
			t.Fatalf("conversations cover %d masters", len(owners))
		}
		conv := fmt.Sprintf("conv%d", i)
		if _, err := a.dir.CreateConversation(ctx, chatstate.Conversation{ID: conv, Members: []string{"alice", "bob"}}); err != nil {
			t.Fatal(err)
		}
		convs = append(convs, conv)
		owners[owner(keys.New(prefix).Messages(conv))] = true
	}

	alice := connectUser(t, a, "alice")
	bob := connectUser(t, b, "bob")
	for _, conv := range convs {
		reply := alice.emit("message:send", map[string]any{"conversationId": conv, "clientMessageId": "m-" + conv, "content": "hi " + conv})
		if reply["ok"] != true {
			t.Fatalf("send to %s: %v", conv, reply)
		}
		bob.waitEvent("message:new", func(m map[string]any) bool {
			msg, _ := m["message"].(map[string]any)
			return msg["conversationId"] == conv && msg["content"] == "hi "+conv && msg["senderId"] == "alice"
		})
	}
	reply := bob.emit("message:send", map[string]any{"conversationId": convs[0], "clientMessageId": "back", "content": "hello alice"})
	if reply["ok"] != true {
		t.Fatalf("reply: %v", reply)
	}
	alice.waitEvent("message:new", func(m map[string]any) bool {
		msg, _ := m["message"].(map[string]any)
		return msg["content"] == "hello alice" && msg["senderId"] == "bob"
	})

	if err := a.gw.BroadcastToUser(ctx, "bob", "note", map[string]any{"from": "a"}); err != nil {
		t.Fatal(err)
	}
	bob.waitEvent("note", func(m map[string]any) bool { return m["from"] == "a" })
	if err := b.gw.BroadcastToUser(ctx, "alice", "note", map[string]any{"from": "b"}); err != nil {
		t.Fatal(err)
	}
	alice.waitEvent("note", func(m map[string]any) bool { return m["from"] == "b" })

	// Barrier: a later broadcast to each arrives after everything before it,
	// then count: every message exactly once, and not echoed to its sender.
	a.gw.BroadcastToUser(ctx, "alice", "barrier", map[string]any{})
	b.gw.BroadcastToUser(ctx, "bob", "barrier", map[string]any{})
	alice.waitEvent("barrier", nil)
	bob.waitEvent("barrier", nil)
	if n := len(bob.received("message:new")); n != len(convs) {
		t.Errorf("bob got %d message:new, want %d", n, len(convs))
	}
	if n := len(alice.received("message:new")); n != 1 {
		t.Errorf("alice got %d message:new, want 1 (her own sends are not echoed to her socket)", n)
	}

	// The conversation list and receipts with conversations on every
	// master: the list's pipelined reads and the commit's touches cross
	// slots, each script stays on one.
	unread := map[string]map[string]float64{"alice": {}, "bob": {}}
	var order []string
	for _, user := range []*testClient{alice, bob} {
		name := map[*testClient]string{alice: "alice", bob: "bob"}[user]
		cursor := any(nil)
		var seen []string
		for page := 0; ; page++ {
			req := map[string]any{"limit": 2}
			if cursor != nil {
				req["cursor"] = cursor
			}
			ack := user.emit("conversations:list", req)
			list, _ := ack["conversations"].([]any)
			if ack["ok"] != true || len(list) > 2 || page > len(convs) {
				t.Fatalf("%s's list page %d: %v", name, page, ack)
			}
			for _, e := range list {
				e := e.(map[string]any)
				seen = append(seen, e["id"].(string))
				unread[name][e["id"].(string)] = e["unread"].(float64)
			}
			if cursor = ack["cursor"]; cursor == nil {
				break
			}
		}
		if len(seen) != len(convs) || seen[0] != convs[0] {
			t.Fatalf("%s's list %v, want all of %v with %s (bob's reply) first", name, seen, convs, convs[0])
		}
		if order == nil {
			order = seen
		} else if fmt.Sprint(order) != fmt.Sprint(seen) {
			t.Errorf("alice's order %v, bob's %v", order, seen)
		}
	}
	for _, conv := range convs {
		wantAlice, wantBob := 0.0, 1.0
		if conv == convs[0] {
			wantAlice, wantBob = 1, 0 // bob's reply; his own reply read alice's message
		}
		if unread["alice"][conv] != wantAlice || unread["bob"][conv] != wantBob {
			t.Errorf("%s unread: alice %v bob %v, want %v and %v", conv, unread["alice"][conv], unread["bob"][conv], wantAlice, wantBob)
		}
	}
	if ack := bob.emit("message:read", map[string]any{"conversationId": convs[1], "seq": 1}); ack["readSeq"] != float64(1) {
		t.Fatalf("read: %v", ack)
	}
	alice.waitEvent("receipt", func(m map[string]any) bool {
		return m["conversationId"] == convs[1] && m["userId"] == "bob" && m["seq"] == float64(1)
	})
}

// slotOwners maps a key to the address of the master serving its slot,
// from CLUSTER SLOTS.
func slotOwners(t *testing.T, client rueidis.Client) func(key string) string {
	t.Helper()
	ranges, err := client.Do(redistest.Ctx(t), client.B().ClusterSlots().Build()).ToArray()
	if err != nil {
		t.Fatal(err)
	}
	type span struct {
		lo, hi int64
		addr   string
	}
	var spans []span
	for _, r := range ranges {
		f, _ := r.ToArray()
		lo, _ := f[0].AsInt64()
		hi, _ := f[1].AsInt64()
		node, _ := f[2].ToArray()
		ip, _ := node[0].ToString()
		port, _ := node[1].AsInt64()
		spans = append(spans, span{lo, hi, fmt.Sprintf("%s:%d", ip, port)})
	}
	return func(key string) string {
		slot := int64(keys.Slot(key))
		for _, s := range spans {
			if s.lo <= slot && slot <= s.hi {
				return s.addr
			}
		}
		t.Fatalf("slot %d of %s is not served", slot, key)
		return ""
	}
}
