package gateway

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/redis/rueidis"
)

// A user added to a conversation while connected to a node that holds no
// other member of it (so the node is not subscribed to the conversation's
// channel) receives live, during a burst of sends from another node, every
// seq from its members entry on, once each and in order: the join control
// makes its node subscribe and catch up from the entry, holding back live
// publications meanwhile. Removed again, it receives its removal entry and
// nothing after it.
func TestJoinDuringBurstDeliversEverySeqOnce(t *testing.T) {
	onStandaloneAndCluster(t, joinDuringBurst)
}

func joinDuringBurst(t *testing.T, client rueidis.Client, prefix string) {
	ctx := redistest.Ctx(t)
	store := openStore(t)
	a, b := startNode(t, client, store, prefix, "a", unthrottled), startNode(t, client, store, prefix, "b", unthrottled)
	if _, err := a.dir.CreateConversation(ctx, chatstate.Conversation{ID: "c1", Members: []string{"alice"}}); err != nil {
		t.Fatal(err)
	}
	alice := connectUser(t, a, "alice")
	bob := connectUser(t, b, "bob")
	const rounds, perRound = 6, 12
	var joinSeq, leaveSeq, beforeLeave int64
	var lastAcked int64
	for r := range rounds {
		acks := make([]<-chan json.RawMessage, 0, perRound)
		for i := range perRound {
			acks = append(acks, alice.emitAsync("message:send", map[string]any{"conversationId": "c1",
				"clientMessageId": fmt.Sprintf("m%d-%d", r, i), "content": "x"}))
		}
		// While those sends are in flight: bob joins (round 1) or leaves
		// (round 4), from node b.
		switch r {
		case 1:
			_, entry, err := b.gw.ChangeMembers(ctx, "c1", "", "", chatstate.MembersChange{Added: []string{"bob"}})
			if err != nil || entry == nil {
				t.Fatalf("add bob: %v %v", entry, err)
			}
			joinSeq = entry.Seq
		case 4:
			beforeLeave = lastAcked
			_, entry, err := b.gw.ChangeMembers(ctx, "c1", "", "", chatstate.MembersChange{Removed: []string{"bob"}})
			if err != nil || entry == nil {
				t.Fatalf("remove bob: %v %v", entry, err)
			}
			leaveSeq = entry.Seq
		}
		for _, ch := range acks {
			select {
			case raw := <-ch:
				var ack map[string]any
				if json.Unmarshal(raw, &ack) != nil || ack["ok"] != true {
					t.Fatalf("send refused: %s", raw)
				}
				seq := int64(ack["message"].(map[string]any)["seq"].(float64))
				lastAcked = max(lastAcked, seq)
			case <-time.After(10 * time.Second):
				t.Fatal("no ack for a send")
			}
		}
	}
	// Bob's live seqs: every seq from his entry up to the last send acked
	// before his removal began, in order, once each; then, of the sends in
	// flight during the removal, those reserved before it (a send reads
	// its recipients with its seq), and his removal entry last.
	bob.waitEvent("message:new", func(m map[string]any) bool {
		return int64(m["message"].(map[string]any)["seq"].(float64)) == leaveSeq
	})
	got := liveSeqs(bob, "c1")
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("bob's live seqs out of order or repeated: %v", got)
		}
	}
	for s := joinSeq; s <= beforeLeave; s++ {
		if !slices.Contains(got, s) {
			t.Fatalf("bob's live seqs %v miss %d (joined at %d; every seq up to %d was sent before his removal)", got, s, joinSeq, beforeLeave)
		}
	}
	if got[0] != joinSeq || got[len(got)-1] != leaveSeq {
		t.Fatalf("bob's live seqs %v, want them from his entry %d to his removal %d", got, joinSeq, leaveSeq)
	}
	// Barrier: one more message bob is a member for again, from node a;
	// anything after his removal would have come before it.
	if _, _, err := a.gw.ChangeMembers(ctx, "c1", "", "", chatstate.MembersChange{Added: []string{"bob"}}); err != nil {
		t.Fatal(err)
	}
	ack := alice.emit("message:send", map[string]any{"conversationId": "c1", "clientMessageId": "last", "content": "x"})
	lastSeq := int64(ack["message"].(map[string]any)["seq"].(float64))
	bob.waitEvent("message:new", func(m map[string]any) bool {
		return int64(m["message"].(map[string]any)["seq"].(float64)) == lastSeq
	})
	got = liveSeqs(bob, "c1")
	if i := slices.Index(got, leaveSeq); i < 0 || got[i+1] <= lastAcked {
		t.Fatalf("bob got %v after his removal at %d (last send before it acked at %d)", got[i+1:], leaveSeq, lastAcked)
	}
}

// liveSeqs are the seqs of conv's message:new events c received, in order.
func liveSeqs(c *testClient, conv string) []int64 {
	var out []int64
	for _, m := range c.received("message:new") {
		msg := m["message"].(map[string]any)
		if msg["conversationId"] == conv {
			out = append(out, int64(msg["seq"].(float64)))
		}
	}
	return out
}

// A conversation created while its members are connected, on nodes where
// none of them had a conversation in common, reaches both at once: the
// creator's send subscribes its node before publishing (its ack waits on
// its own publication), and the other member's node subscribes on the
// announcement.
func TestConversationCreatedWhileConnected(t *testing.T) {
	client, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	store := openStore(t)
	a, b := startNode(t, client, store, prefix, "a"), startNode(t, client, store, prefix, "b")
	alice := connectUser(t, a, "alice")
	bob := connectUser(t, b, "bob")
	c, err := a.dir.CreateConversation(ctx, chatstate.Conversation{ID: "fresh", Members: []string{"alice", "bob"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.gw.ConversationCreated(ctx, c); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		ack := alice.emit("message:send", map[string]any{"conversationId": "fresh", "clientMessageId": fmt.Sprint(i), "content": "hi"})
		if ack["ok"] != true {
			t.Fatalf("send: %v", ack)
		}
	}
	bob.until(t, func() bool { return slices.Equal(liveSeqs(bob, "fresh"), []int64{1, 2, 3}) },
		func() string { return fmt.Sprintf("bob got %v, want [1 2 3]", liveSeqs(bob, "fresh")) })
	if got := liveSeqs(alice, "fresh"); len(got) != 0 {
		t.Fatalf("the sender's socket got its own messages as message:new: %v", got)
	}
}

// A message to a conversation of ten, whose members are connected to two
// nodes, is published once (not once per member) and reaches every member's
// socket: Redis work per message grows with the nodes, not the members.
func TestMessagePublishedOncePerMessage(t *testing.T) {
	srv := redistest.StartServer(t)
	client := srv.Client(t)
	prefix := redistest.Prefix(t)
	ctx := redistest.Ctx(t)
	store := openStore(t)
	a, b := startNode(t, client, store, prefix, "a", unthrottled), startNode(t, client, store, prefix, "b", unthrottled)
	members := make([]string, 10)
	for i := range members {
		members[i] = fmt.Sprintf("u%d", i)
	}
	if _, err := a.dir.CreateConversation(ctx, chatstate.Conversation{ID: "ten", Members: members}); err != nil {
		t.Fatal(err)
	}
	clients := make([]*testClient, len(members))
	for i, u := range members {
		n := a
		if i%2 == 1 {
			n = b
		}
		clients[i] = connectUser(t, n, u)
	}
	publishes := func() int64 {
		t.Helper()
		info, err := client.Do(ctx, client.B().Info().Section("commandstats").Build()).ToString()
		if err != nil {
			t.Fatal(err)
		}
		_, rest, ok := strings.Cut(info, "cmdstat_publish:calls=")
		if !ok {
			return 0
		}
		n, err := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := publishes()
	const sends = 20
	for i := range sends {
		if ack := clients[0].emit("message:send", map[string]any{"conversationId": "ten", "clientMessageId": fmt.Sprint(i), "content": "hi"}); ack["ok"] != true {
			t.Fatalf("send: %v", ack)
		}
	}
	if got := publishes() - before; got != sends {
		t.Fatalf("%d sends made %d PUBLISHes, want one each", sends, got)
	}
	for i, c := range clients[1:] {
		c.until(t, func() bool { return len(liveSeqs(c, "ten")) >= sends },
			func() string {
				return fmt.Sprintf("%s got %v, want %d messages", members[i+1], liveSeqs(c, "ten"), sends)
			})
	}
}

// A member whose join reaches its node after it sent from there (the send
// subscribed the node first) gets what was published between the join and
// that send when the join arrives: every seq once, never its own message.
func TestLateJoinFillsTheGapBelowAnEarlierSend(t *testing.T) {
	client, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	store := openStore(t)
	a, b := startNode(t, client, store, prefix, "a"), startNode(t, client, store, prefix, "b")
	if _, err := a.dir.CreateConversation(ctx, chatstate.Conversation{ID: "c1", Members: []string{"alice"}}); err != nil {
		t.Fatal(err)
	}
	alice := connectUser(t, a, "alice")
	bob := connectUser(t, b, "bob")
	// Added without an announcement: node b knows nothing of it yet.
	if _, _, err := a.dir.UpdateMembers(ctx, "c1", chatstate.MembersChange{Added: []string{"bob"}}); err != nil {
		t.Fatal(err)
	}
	send := func(c *testClient, id string) int64 {
		t.Helper()
		ack := c.emit("message:send", map[string]any{"conversationId": "c1", "clientMessageId": id, "content": id})
		if ack["ok"] != true {
			t.Fatalf("send %s: %v", id, ack)
		}
		return int64(ack["message"].(map[string]any)["seq"].(float64))
	}
	for i := range 3 {
		send(alice, fmt.Sprint("a", i)) // 1..3: not live to bob, b is not subscribed
	}
	own := send(bob, "b0") // subscribes b first; its ack waits on its own publication
	next := send(alice, "a3")
	waitSeqs := func(want []int64) {
		t.Helper()
		bob.until(t, func() bool {
			got := liveSeqs(bob, "c1")
			if len(got) > len(want) {
				t.Fatalf("bob's live seqs %v, want %v", got, want)
			}
			return slices.Equal(got, want)
		}, func() string { return fmt.Sprintf("bob's live seqs %v, want %v", liveSeqs(bob, "c1"), want) })
	}
	waitSeqs([]int64{next})
	if err := b.gw.announceJoin(ctx, "c1", []string{"bob"}, 0); err != nil {
		t.Fatal(err)
	}
	// The gap comes after what was live: 1..3, never his own.
	waitSeqs([]int64{next, 1, 2, 3})
	last := send(alice, "a4")
	waitSeqs([]int64{next, 1, 2, 3, last})
	if own != 4 {
		t.Fatalf("bob's message got seq %d, want 4", own)
	}
}
