package fanout

import (
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatstate/chatstate/internal/keys"
	"github.com/chatstate/chatstate/internal/leaktest"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/redis/rueidis"
)

func TestMain(m *testing.M) { os.Exit(redistest.Run(m)) }

// recorder is a Handler that records what it is given, in order.
type recorder struct {
	mu     sync.Mutex
	events []string // "u:payload", "conv/c:payload", "lost", "restored"
	got    chan struct{}
	// b, when set, is asked for Live in Lost and Restored: ups records
	// what it said.
	b   *Redis
	ups []bool
}

func newRecorder() *recorder { return &recorder{got: make(chan struct{}, 100)} }

func (r *recorder) live() {
	if r.b != nil {
		_, up := r.b.Live()
		r.mu.Lock()
		r.ups = append(r.ups, up)
		r.mu.Unlock()
	}
}

func (r *recorder) add(e string) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
	r.got <- struct{}{}
}

func (r *recorder) handler() Handler {
	return Handler{
		Message:      func(u, p string) { r.add(u + ":" + p) },
		Conversation: func(c, p string) { r.add("conv/" + c + ":" + p) },
		Lost:         func(error) { r.live(); r.add("lost") },
		Restored:     func(context.Context) { r.live(); r.add("restored") },
	}
}

// userChannels names the user channels of ids, as a script is given them.
func userChannels(k keys.Keys, ids ...string) []string {
	out := make([]string, len(ids))
	for i, u := range ids {
		out[i] = k.UserChannel(u)
	}
	return out
}

// waitFor waits until the events include want, and returns them.
func (r *recorder) waitFor(t *testing.T, want string) []string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		evs := append([]string(nil), r.events...)
		r.mu.Unlock()
		for _, e := range evs {
			if e == want {
				return evs
			}
		}
		select {
		case <-r.got:
		case <-deadline:
			t.Fatalf("no %q; events %q", want, evs)
		}
	}
}

func startBroker(t *testing.T, client rueidis.Client, prefix string) (*Redis, *recorder, context.CancelFunc) {
	t.Helper()
	b := NewRedis(client, RedisConfig{KeyPrefix: prefix})
	rec := newRecorder()
	rec.b = b
	ctx, cancel := context.WithCancel(context.Background())
	if err := b.Start(ctx, rec.handler()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); b.Close() })
	return b, rec, cancel
}

func TestRedisBrokerDeliversToSubscribedUsersOnly(t *testing.T) {
	client, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	a, recA, _ := startBroker(t, client, prefix)
	b, recB, _ := startBroker(t, client, prefix)
	if err := a.SubscribeUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	if err := b.SubscribeUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if err := b.PublishToUsers(ctx, []string{"alice", "bob"}, "hi"); err != nil {
		t.Fatal(err)
	}
	recA.waitFor(t, "alice:hi")
	recB.waitFor(t, "bob:hi")
	if err := a.UnsubscribeUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	// A script publishing to Channels reaches the same subscribers.
	ch := userChannels(b.keys, "bob", "alice")
	if err := client.Do(ctx, client.B().Eval().Script("redis.call('PUBLISH', KEYS[1], 'x'); redis.call('PUBLISH', KEYS[2], 'x'); return 1").
		Numkeys(2).Key(ch...).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	recB.waitFor(t, "bob:x")
	// Barrier on a's connection: anything for alice published before
	// would have arrived first.
	if err := a.SubscribeUser(ctx, "carol"); err != nil {
		t.Fatal(err)
	}
	a.PublishToUsers(ctx, []string{"carol"}, "barrier")
	for _, e := range recA.waitFor(t, "carol:barrier") {
		if e == "alice:x" {
			t.Fatal("alice got a publication after her unsubscribe")
		}
	}
}

// After the subscriber is lost, the broker restores every subscription
// and calls Restored before it delivers any later publication.
func TestRedisBrokerRestoresBeforeDelivering(t *testing.T) {
	client, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	b, rec, _ := startBroker(t, client, prefix)
	if err := b.SubscribeUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	losses, up := b.Live()
	if !up || losses != 0 {
		t.Fatalf("live = %d, %v after start; want 0, true", losses, up)
	}
	if err := client.Do(ctx, client.B().ClientKill().TypePubsub().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	rec.waitFor(t, "lost")
	// Publish until one arrives: the restore may take a few attempts.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := b.PublishToUsers(ctx, []string{"alice"}, "after"); err != nil {
			t.Fatal(err)
		}
		rec.mu.Lock()
		n := len(rec.events)
		rec.mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no delivery after the restore")
		}
		select {
		case <-rec.got:
		case <-time.After(50 * time.Millisecond):
		}
	}
	evs := rec.waitFor(t, "alice:after")
	if evs[0] != "lost" || evs[1] != "restored" || evs[2] != "alice:after" {
		t.Fatalf("events %q; want lost, restored, then the publication", evs)
	}
	if losses, _ := b.Live(); losses != 1 {
		t.Fatalf("%d losses counted, want 1", losses)
	}
}

// Close joins the broker's loop (and, on a Cluster, the watchers of every
// shard connection), and a broker closed before it was started returns at
// once.
func TestRedisBrokerCloseJoins(t *testing.T) {
	for _, s := range setups {
		t.Run(s.name, func(t *testing.T) {
			client, prefix := s.start(t)
			NewRedis(client, RedisConfig{KeyPrefix: prefix}).Close()
			b := NewRedis(client, RedisConfig{KeyPrefix: prefix})
			ctx, cancel := context.WithCancel(context.Background())
			if err := b.Start(ctx, Handler{}); err != nil {
				t.Fatal(err)
			}
			if s.sharded {
				if err := b.SubscribeConversations(ctx, []string{"c1", "c2", "c3"}); err != nil {
					t.Fatal(err)
				}
			}
			if len(leaktest.Running("github.com/chatstate/chatstate/fanout")) == 0 {
				t.Fatal("no broker goroutine seen before Close: the leak check sees nothing")
			}
			cancel()
			b.Close()
			select {
			case <-b.Done():
			default:
				t.Fatal("Close returned before the loop ended")
			}
			leaktest.Wait(t, 5*time.Second, "github.com/chatstate/chatstate/fanout")
		})
	}
}

// setups are the Redis deployments the broker tests run on: a standalone
// server (plain channels) and a 3-master Cluster (shard channels).
var setups = []struct {
	name    string
	start   func(testing.TB) (rueidis.Client, string)
	sharded bool
}{
	{"standalone", redistest.Start, false},
	{"cluster", redistest.StartClusterClient, true},
}

// A script publishing to a conversation's channel reaches exactly the
// brokers subscribed to it, once each, in the order the script published
// (per conversation: on a Cluster two conversations may be on two
// connections).
func TestRedisBrokerConversationChannels(t *testing.T) {
	for _, s := range setups {
		t.Run(s.name, func(t *testing.T) { testConversationChannels(t, s.start, s.sharded) })
	}
}

func testConversationChannels(t *testing.T, start func(testing.TB) (rueidis.Client, string), wantSharded bool) {
	client, prefix := start(t)
	ctx := redistest.Ctx(t)
	a, recA, _ := startBroker(t, client, prefix)
	b, recB, _ := startBroker(t, client, prefix)
	if err := a.SubscribeConversations(ctx, []string{"c1", "c2"}); err != nil {
		t.Fatal(err)
	}
	if err := b.SubscribeConversations(ctx, []string{"c1"}); err != nil {
		t.Fatal(err)
	}
	publish := func(conv, payload string) {
		t.Helper()
		ch, sharded := a.ConversationChannel(conv)
		if sharded != wantSharded {
			t.Fatalf("ConversationChannel(%q) sharded = %v, want %v", conv, sharded, wantSharded)
		}
		cmd := "PUBLISH"
		if sharded {
			cmd = "SPUBLISH"
		}
		if err := client.Do(ctx, client.B().Eval().Script("redis.call('"+cmd+"', KEYS[1], ARGV[1]); redis.call('"+cmd+"', KEYS[1], ARGV[2]); return 1").
			Numkeys(1).Key(ch).Arg(payload+"1", payload+"2").Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	publish("c1", "m")
	publish("c2", "n")
	recA.waitFor(t, "conv/c2:n2")
	evs := recA.waitFor(t, "conv/c1:m2")
	if len(evs) != 4 || !slices.Equal(convEvents(evs, "c1"), []string{"m1", "m2"}) || !slices.Equal(convEvents(evs, "c2"), []string{"n1", "n2"}) {
		t.Fatalf("a got %q, want m1, m2 on c1 and n1, n2 on c2", evs)
	}
	recB.waitFor(t, "conv/c1:m2")
	if err := b.UnsubscribeConversations(ctx, []string{"c1"}); err != nil {
		t.Fatal(err)
	}
	publish("c1", "after")
	recA.waitFor(t, "conv/c1:after2")
	// Barrier on b's connection of c1 (a conversation on c1's master): a
	// publication for c1 made before would have arrived first.
	owner, barrier := ownerOf(t, ctx, client, b.keys.ConversationChannel("c1")), ""
	for i := 3; barrier == ""; i++ {
		if id := "c" + strconv.Itoa(i); ownerOf(t, ctx, client, b.keys.ConversationChannel(id)) == owner {
			barrier = id
		}
	}
	if err := b.SubscribeConversations(ctx, []string{barrier}); err != nil {
		t.Fatal(err)
	}
	publish(barrier, "barrier")
	for _, e := range recB.waitFor(t, "conv/"+barrier+":barrier2") {
		if strings.HasPrefix(e, "conv/c1:after") {
			t.Fatal("b got a publication after its unsubscribe")
		}
	}
}
