package gateway

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/redis/rueidis"
)

// A device that connects while messages are being sent, and syncs from 0
// right after its connect, has every message from the sync or live: the
// node subscribes to the channels of the user's conversations before the
// connect completes, and a message is cached and published in one step
// (docs/delivery.md, "Fan-out"). Its live deliveries come in seq order.
func TestConnectDuringBurstHasNoGapAfterSync(t *testing.T) {
	// In Cluster the commit script SPUBLISHes on the conversation's master,
	// where the node's shard subscriber for it sits.
	onStandaloneAndCluster(t, connectDuringBurst)
}

func connectDuringBurst(t *testing.T, client rueidis.Client, prefix string) {
	ctx := redistest.Ctx(t)
	store := openStore(t)
	a, b := startNode(t, client, store, prefix, "a", unthrottled), startNode(t, client, store, prefix, "b", unthrottled)
	if _, err := a.dir.CreateConversation(ctx, chatstate.Conversation{ID: "c1", Members: []string{"alice", "bob"}}); err != nil {
		t.Fatal(err)
	}
	alice := connectUser(t, a, "alice")
	const rounds, perRound = 5, 16
	var devices []*testClient
	synced := make([]map[int64]bool, rounds)
	for r := range rounds {
		acks := make([]<-chan json.RawMessage, 0, perRound)
		for i := range perRound {
			acks = append(acks, alice.emitAsync("message:send", map[string]any{"conversationId": "c1",
				"clientMessageId": fmt.Sprintf("m%d-%d", r, i), "content": "x"}))
		}
		// While those sends are in flight: a new device connects and
		// syncs at once, as a client does after its connect.
		d := connectDevice(t, b, "bob", fmt.Sprintf("d%d", r), nil)
		devices = append(devices, d)
		synced[r] = syncAll(t, d, "c1")
		for _, ch := range acks {
			select {
			case raw := <-ch:
				var ack map[string]any
				json.Unmarshal(raw, &ack)
				if ack["ok"] != true {
					t.Fatalf("send refused: %s", raw)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no ack for a send")
			}
		}
	}
	total := int64(rounds * perRound)
	for r, d := range devices {
		deadline := time.Now().Add(10 * time.Second)
		for {
			have := map[int64]bool{}
			for s := range synced[r] {
				have[s] = true
			}
			var last int64
			for _, m := range d.received("message:new") {
				seq := int64(m["message"].(map[string]any)["seq"].(float64))
				if seq <= last {
					t.Fatalf("device d%d: live seq %d after %d", r, seq, last)
				}
				last = seq
				have[seq] = true
			}
			missing := []int64{}
			for s := int64(1); s <= total; s++ {
				if !have[s] {
					missing = append(missing, s)
				}
			}
			if len(missing) == 0 {
				t.Logf("device d%d: %d by sync, %d live", r, len(synced[r]), len(d.received("message:new")))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("device d%d (connected in round %d) never got seqs %v, neither by sync nor live", r, r, missing)
			}
			select {
			case <-d.notify:
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// syncAll calls messages:sync from 0 until a page is short, and returns
// the seqs it got.
func syncAll(t *testing.T, c *testClient, conv string) map[int64]bool {
	t.Helper()
	got := map[int64]bool{}
	var after int64
	for {
		ack := c.emit("messages:sync", map[string]any{"conversationId": conv, "afterSeq": after, "limit": 10})
		msgs, ok := ack["messages"].([]any)
		if !ok {
			t.Fatalf("sync: %v", ack)
		}
		for _, m := range msgs {
			seq := int64(m.(map[string]any)["seq"].(float64))
			if seq <= after {
				t.Fatalf("sync after %d returned seq %d", after, seq)
			}
			got[seq] = true
			after = seq
		}
		if len(msgs) < 10 {
			return got
		}
	}
}
