package fanout

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatstate/chatstate/internal/keys"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/redis/rueidis"
)

// ownerOf is the master owning key's slot, found without the broker's slot
// map: the only node that answers a command on key instead of MOVED.
func ownerOf(t *testing.T, ctx context.Context, client rueidis.Client, key string) string {
	t.Helper()
	var owners []string
	for addr, node := range client.Nodes() {
		err := node.Do(ctx, node.B().Exists().Key(key).Build()).Error()
		if err == nil {
			owners = append(owners, addr)
		} else if re, ok := rueidis.IsRedisErr(err); !ok || !strings.HasPrefix(re.Error(), "MOVED") {
			t.Fatalf("EXISTS %s on %s: %v", key, addr, err)
		}
	}
	if len(owners) != 1 {
		t.Fatalf("%s: owners %q, want one", key, owners)
	}
	return owners[0]
}

// convsPerShard picks n conversation IDs (base + a number) whose channels
// are on each master, keyed by the master's address.
func convsPerShard(t *testing.T, ctx context.Context, client rueidis.Client, k keys.Keys, base string, n int) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for i := 0; len(out) < 3 || slices.ContainsFunc(slices.Collect(maps.Values(out)), func(ids []string) bool { return len(ids) < n }); i++ {
		id := base + strconv.Itoa(i)
		addr := ownerOf(t, ctx, client, k.ConversationChannel(id))
		if len(out[addr]) < n {
			out[addr] = append(out[addr], id)
		}
		if i > 1000 {
			t.Fatalf("conversations on fewer than 3 masters: %v", out)
		}
	}
	return out
}

// spublish publishes payloads to conv's shard channel from a script, as the
// commit script does.
func spublish(t *testing.T, ctx context.Context, client rueidis.Client, b *Redis, conv string, payloads ...string) {
	t.Helper()
	ch, sharded := b.ConversationChannel(conv)
	if !sharded {
		t.Fatalf("%s: not a shard channel on a cluster client", conv)
	}
	// Bounded: rueidis follows MOVED until its context ends.
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := client.Do(ctx, client.B().Eval().Script("for _, p in ipairs(ARGV) do redis.call('SPUBLISH', KEYS[1], p) end return 1").
		Numkeys(1).Key(ch).Arg(payloads...).Build()).Error(); err != nil {
		t.Fatalf("SPUBLISH %s: %v", conv, err)
	}
}

// numsub is a node's count of subscribers of ch: shard ones (PUBSUB
// SHARDNUMSUB) or plain ones (PUBSUB NUMSUB).
func numsub(t *testing.T, ctx context.Context, client rueidis.Client, addr, ch string, shard bool) int64 {
	t.Helper()
	node := client.Nodes()[addr]
	cmd := node.B().PubsubNumsub().Channel(ch).Build()
	if shard {
		cmd = node.B().PubsubShardnumsub().Channel(ch).Build()
	}
	v, err := node.Do(ctx, cmd).ToArray()
	if err != nil || len(v) != 2 {
		t.Fatalf("PUBSUB on %s: %v %v", addr, v, err)
	}
	n, err := v[1].AsInt64()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// convEvents are the payloads conv got, in order.
func convEvents(evs []string, conv string) []string {
	var out []string
	for _, e := range evs {
		if p, ok := strings.CutPrefix(e, "conv/"+conv+":"); ok {
			out = append(out, p)
		}
	}
	return out
}

// Conversations on all three masters: each broker gets the publications of
// the conversations it subscribed, in order, and nothing else; each
// subscription is a shard subscription at the owning master, and a plain
// subscription nowhere.
func TestRedisBrokerClusterShardSubscriptions(t *testing.T) {
	client, prefix := redistest.StartClusterClient(t)
	ctx := redistest.Ctx(t)
	a, recA, _ := startBroker(t, client, prefix)
	b, recB, _ := startBroker(t, client, prefix)
	shards := convsPerShard(t, ctx, client, a.keys, "spread", 3)
	var subA, subB, none []string
	for _, ids := range shards {
		subA = append(subA, ids[0], ids[1])
		subB = append(subB, ids[1])
		none = append(none, ids[2])
	}
	if err := a.SubscribeConversations(ctx, subA); err != nil {
		t.Fatal(err)
	}
	if err := b.SubscribeConversations(ctx, subB); err != nil {
		t.Fatal(err)
	}
	const rounds = 4
	for r := range rounds {
		// Unsubscribed conversations first: had they been delivered, they
		// would precede the last round on the same connection.
		for _, conv := range append(append([]string(nil), none...), subA...) {
			spublish(t, ctx, client, a, conv, fmt.Sprintf("%d", r))
		}
	}
	last := strconv.Itoa(rounds - 1)
	want := []string{"0", "1", "2", "3"}
	for _, c := range []struct {
		rec  *recorder
		subs []string
	}{{recA, subA}, {recB, subB}} {
		var evs []string
		for _, conv := range c.subs {
			evs = c.rec.waitFor(t, "conv/"+conv+":"+last)
		}
		for _, conv := range c.subs {
			if got := convEvents(evs, conv); !slices.Equal(got, want) {
				t.Errorf("%s got %q, want %q", conv, got, want)
			}
		}
		if len(evs) != len(c.subs)*rounds {
			t.Errorf("events %q: %d, want %d (a conversation not subscribed delivered?)", evs, len(evs), len(c.subs)*rounds)
		}
	}

	for addr, ids := range shards {
		for i, conv := range ids {
			ch, _ := a.ConversationChannel(conv)
			wantN := []int64{1, 2, 0}[i]
			for other := range shards {
				n := numsub(t, ctx, client, other, ch, true)
				if other == addr && n != wantN || other != addr && n != 0 {
					t.Errorf("%s on %s (owner %s): %d shard subscribers", conv, other, addr, n)
				}
				if n := numsub(t, ctx, client, other, ch, false); n != 0 {
					t.Errorf("%s on %s: %d plain subscribers, want 0", conv, other, n)
				}
			}
		}
	}

	// SUNSUBSCRIBE at the owner.
	if err := b.UnsubscribeConversations(ctx, subB); err != nil {
		t.Fatal(err)
	}
	for addr, ids := range shards {
		ch, _ := a.ConversationChannel(ids[1])
		if n := numsub(t, ctx, client, addr, ch, true); n != 1 {
			t.Errorf("%s after b's unsubscribe: %d shard subscribers on %s, want 1 (a's)", ids[1], n, addr)
		}
	}
}

// killShardSubscribers closes every connection with shard subscriptions on
// the node at addr, as a network failure would.
func killShardSubscribers(t *testing.T, ctx context.Context, client rueidis.Client, addr string) int {
	t.Helper()
	node := client.Nodes()[addr]
	list, err := node.Do(ctx, node.B().ClientList().Build()).ToString()
	if err != nil {
		t.Fatal(err)
	}
	list = strings.TrimPrefix(list, "txt:") // a RESP3 verbatim string's format
	killed := 0
	for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
		f := map[string]string{}
		for _, kv := range strings.Fields(line) {
			k, v, _ := strings.Cut(kv, "=")
			f[k] = v
		}
		if f["ssub"] == "" || f["ssub"] == "0" {
			continue
		}
		id, err := strconv.ParseInt(f["id"], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if err := node.Do(ctx, node.B().ClientKill().Id(id).Build()).Error(); err != nil {
			t.Fatal(err)
		}
		killed++
	}
	return killed
}

// publishUntilDelivered publishes to every conversation of convs until a
// publication arrives after the events seen so far, and returns the events.
func publishUntilDelivered(t *testing.T, ctx context.Context, client rueidis.Client, b *Redis, rec *recorder, convs []string, payload string) []string {
	t.Helper()
	rec.mu.Lock()
	seen := len(rec.events)
	rec.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, conv := range convs {
			spublish(t, ctx, client, b, conv, payload)
		}
		rec.mu.Lock()
		evs := append([]string(nil), rec.events...)
		rec.mu.Unlock()
		if slices.ContainsFunc(evs[seen:], func(e string) bool { return strings.HasPrefix(e, "conv/") }) {
			return evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("no delivery after the restore; events %q", evs)
		}
		select {
		case <-rec.got:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// checkRestored checks that a loss was reported once, with Live down, and
// that Restored came before any publication delivered after it.
func checkRestored(t *testing.T, b *Redis, rec *recorder, evs []string) {
	t.Helper()
	i := slices.Index(evs, "lost")
	if i < 0 || i+1 >= len(evs) || evs[i+1] != "restored" {
		t.Fatalf("events %q; want lost, then restored before any publication", evs)
	}
	if slices.Contains(evs[i+2:], "lost") || slices.Contains(evs[i+2:], "restored") {
		t.Fatalf("events %q; want one loss", evs)
	}
	rec.mu.Lock()
	ups := append([]bool(nil), rec.ups...)
	rec.mu.Unlock()
	if !slices.Equal(ups, []bool{false, false}) {
		t.Fatalf("Live up at Lost and Restored: %v, want down at both", ups)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		losses, up := b.Live()
		if losses != 1 {
			t.Fatalf("%d losses counted, want 1", losses)
		}
		if up {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Live still down after Restored")
		}
		time.Sleep(10 * time.Millisecond) // polling Live with a deadline
	}
}

// A shard connection killed: Lost, then Restored before the next
// publication on any conversation (all three masters), then every
// conversation is delivered again.
func TestRedisBrokerClusterShardLoss(t *testing.T) {
	client, prefix := redistest.StartClusterClient(t)
	ctx := redistest.Ctx(t)
	b, rec, _ := startBroker(t, client, prefix)
	shards := convsPerShard(t, ctx, client, b.keys, "loss", 1)
	var convs []string
	for _, ids := range shards {
		convs = append(convs, ids[0])
	}
	if err := b.SubscribeConversations(ctx, convs); err != nil {
		t.Fatal(err)
	}
	if err := b.SubscribeUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	for _, conv := range convs {
		spublish(t, ctx, client, b, conv, "before")
		rec.waitFor(t, "conv/"+conv+":before")
	}
	victim := ownerOf(t, ctx, client, b.keys.ConversationChannel(convs[1]))
	if n := killShardSubscribers(t, ctx, client, victim); n != 1 {
		t.Fatalf("killed %d shard subscribers on %s, want 1", n, victim)
	}
	rec.waitFor(t, "lost")
	evs := publishUntilDelivered(t, ctx, client, b, rec, convs, "after")
	checkRestored(t, b, rec, evs)
	for _, conv := range convs {
		spublish(t, ctx, client, b, conv, "later")
		rec.waitFor(t, "conv/"+conv+":later")
	}
	if err := b.PublishToUsers(ctx, []string{"alice"}, "hi"); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "alice:hi")
	ch, _ := b.ConversationChannel(convs[1])
	if n := numsub(t, ctx, client, victim, ch, true); n != 1 {
		t.Fatalf("%d shard subscribers of %s on %s after the restore, want 1", n, convs[1], victim)
	}
}

// clusterCmd runs a command on the node at addr.
func clusterCmd(t *testing.T, ctx context.Context, client rueidis.Client, addr string, args ...string) rueidis.RedisResult {
	t.Helper()
	node := client.Nodes()[addr]
	return node.Do(ctx, node.B().Arbitrary(args[0]).Args(args[1:]...).Build())
}

// clusterView is what the node at addr knows of every node: its ID,
// config epoch and slots, one sorted line per node.
func clusterView(t *testing.T, ctx context.Context, client rueidis.Client, addr string) string {
	t.Helper()
	out, err := clusterCmd(t, ctx, client, addr, "CLUSTER", "NODES").ToString()
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, line := range strings.Split(strings.TrimSpace(strings.TrimPrefix(out, "txt:")), "\n") {
		if f := strings.Fields(line); len(f) >= 8 {
			lines = append(lines, strings.Join(append([]string{f[0], f[6]}, f[8:]...), " "))
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// waitConverged waits until every node has the same view of the cluster.
// Moving slots faster than the nodes gossip lets a node that missed an
// epoch bump take a slot without a higher epoch, and the others then hand
// the slot back to its old owner.
func waitConverged(t *testing.T, ctx context.Context, client rueidis.Client) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		views := map[string]bool{}
		for addr := range client.Nodes() {
			views[clusterView(t, ctx, client, addr)] = true
		}
		if len(views) == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster views still differ after 10s: %q", mapKeys(views))
		}
		time.Sleep(20 * time.Millisecond) // polling gossip with a deadline
	}
}

func mapKeys[K comparable, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// moveSlot moves an empty slot from one master to another, as resharding
// does, between two points where every node agrees on the cluster.
func moveSlot(t *testing.T, ctx context.Context, client rueidis.Client, slot uint16, from, to string) {
	t.Helper()
	waitConverged(t, ctx, client)
	defer waitConverged(t, ctx, client)
	id := map[string]string{}
	for addr := range client.Nodes() {
		v, err := clusterCmd(t, ctx, client, addr, "CLUSTER", "MYID").ToString()
		if err != nil {
			t.Fatal(err)
		}
		id[addr] = v
	}
	s := strconv.Itoa(int(slot))
	steps := [][]string{
		{to, "IMPORTING", id[from]},
		{from, "MIGRATING", id[to]},
		{to, "NODE", id[to]},
		{from, "NODE", id[to]},
	}
	for addr := range id {
		if addr != from && addr != to {
			steps = append(steps, []string{addr, "NODE", id[to]})
		}
	}
	for _, st := range steps {
		args := []string{"CLUSTER", "SETSLOT", s, st[1]}
		if err := clusterCmd(t, ctx, client, st[0], append(args, st[2])...).Error(); err != nil {
			t.Fatalf("%v on %s: %v", args, st[0], err)
		}
	}
}

// emptySlotConv picks a conversation (base + a number) whose channel's slot
// (none of avoid) holds no key, so moving the slot moves nothing of another test; from is
// its owner, to another master.
func emptySlotConv(t *testing.T, ctx context.Context, client rueidis.Client, k keys.Keys, base string, avoid ...uint16) (conv string, slot uint16, from, to string) {
	t.Helper()
	for i := 0; conv == ""; i++ {
		id := base + strconv.Itoa(i)
		ch := k.ConversationChannel(id)
		if slot = keys.Slot(ch); slices.Contains(avoid, slot) {
			continue
		}
		from = ownerOf(t, ctx, client, ch)
		if n, err := clusterCmd(t, ctx, client, from, "CLUSTER", "COUNTKEYSINSLOT", strconv.Itoa(int(slot))).AsInt64(); err != nil {
			t.Fatal(err)
		} else if n == 0 {
			conv = id
		}
	}
	for addr := range client.Nodes() {
		if addr != from {
			return conv, slot, from, addr
		}
	}
	t.Fatal("one master")
	return
}

// A subscribed slot moved to another master (Redis drops its shard
// subscriptions at the old one): a loss, restored by subscribing at the new
// owner. A subscription to a slot that moved unseen meets MOVED: it fails,
// and the broker reads the slot map again (no loss: nothing subscribed
// moved), so the next attempt goes to the new owner.
func TestRedisBrokerClusterSlotMoved(t *testing.T) {
	client, prefix := redistest.StartClusterClient(t)
	ctx := redistest.Ctx(t)
	k := keys.New(prefix)
	conv, slot, from, to := emptySlotConv(t, ctx, client, k, "moved-"+prefix)
	other, slot2, from2, to2 := emptySlotConv(t, ctx, client, k, "unseen-"+prefix, slot)
	// Moved back after the broker is closed (cleanups run last first).
	t.Cleanup(func() { moveSlot(t, context.Background(), client, slot, to, from) })
	b, rec, _ := startBroker(t, client, prefix)
	if err := b.SubscribeConversations(ctx, []string{conv}); err != nil {
		t.Fatal(err)
	}
	spublish(t, ctx, client, b, conv, "before")
	rec.waitFor(t, "conv/"+conv+":before")

	moveSlot(t, ctx, client, slot, from, to)
	rec.waitFor(t, "lost")
	evs := publishUntilDelivered(t, ctx, client, b, rec, []string{conv}, "after")
	checkRestored(t, b, rec, evs)
	ch, _ := b.ConversationChannel(conv)
	if n := numsub(t, ctx, client, to, ch, true); n != 1 {
		t.Fatalf("%d shard subscribers on the new owner, want 1", n)
	}
	if n := numsub(t, ctx, client, from, ch, true); n != 0 {
		t.Fatalf("%d shard subscribers left on the old owner, want 0", n)
	}

	moveSlot(t, ctx, client, slot2, from2, to2)
	t.Cleanup(func() { moveSlot(t, context.Background(), client, slot2, to2, from2) })
	err := b.SubscribeConversations(ctx, []string{other})
	if err == nil || !strings.Contains(err.Error(), "MOVED") {
		t.Fatalf("subscribing at the old owner: %v, want MOVED", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for err != nil {
		if time.Now().After(deadline) {
			t.Fatalf("still failing after the slot map was read again: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling for the re-read map with a deadline
		err = b.SubscribeConversations(ctx, []string{other})
	}
	ch2, _ := b.ConversationChannel(other)
	if n := numsub(t, ctx, client, to2, ch2, true); n != 1 {
		t.Fatalf("%d shard subscribers on the new owner, want 1", n)
	}
	spublish(t, ctx, client, b, other, "hi")
	rec.waitFor(t, "conv/"+other+":hi")
	if losses, up := b.Live(); losses != 1 || !up {
		t.Fatalf("live = %d, %v; want 1, true (a move of an unsubscribed slot is no loss)", losses, up)
	}
}

// owner finds a slot's range by binary search, and a slot of no range has
// no owner.
func TestTopologyOwner(t *testing.T) {
	topo := topology{{0, 99, "a:1"}, {100, 100, "b:1"}, {200, 16383, "a:1"}}
	for slot, want := range map[uint16]string{0: "a:1", 99: "a:1", 100: "b:1", 101: "", 199: "", 200: "a:1", 16383: "a:1"} {
		if got := topo.owner(slot); got != want {
			t.Errorf("owner(%d) = %q, want %q", slot, got, want)
		}
	}
	if got := topo.masters(); !slices.Equal(got, []string{"a:1", "b:1"}) {
		t.Errorf("masters = %q", got)
	}
	if got := (topology{}).owner(5); got != "" {
		t.Errorf("empty map: owner %q", got)
	}
}
