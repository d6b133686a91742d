package fanout

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/chatstate/chatstate/internal/leaktest"
	"github.com/redis/rueidis"
)

func startMiniredis(t *testing.T) (*miniredis.Miniredis, rueidis.Client) {
	t.Helper()
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{m.Addr()}, DisableCache: true, ForceSingleClient: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return m, c
}

// Publications a script makes inside the embedded Redis reach the
// in-process broker in the order the script made them, interleaved in
// execution order with the broker's own publications.
func TestInProcessDeliversScriptPublicationsInOrder(t *testing.T) {
	m, client := startMiniredis(t)
	ctx := context.Background()
	b := NewInProcess(m, "p:")
	rec := newRecorder()
	rec.got = make(chan struct{}, 1000)
	if err := b.Start(ctx, rec.handler()); err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.SubscribeUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	ch := userChannels(b.keys, "alice", "bob")
	const n = 50
	for i := 0; i < n; i++ {
		// Each script publishes two seqs to alice and one to bob, whom
		// nobody here subscribed.
		err := client.Do(ctx, client.B().Eval().Script(
			"redis.call('PUBLISH', KEYS[1], ARGV[1]); redis.call('PUBLISH', KEYS[2], 'x'); redis.call('PUBLISH', KEYS[1], ARGV[2]); return 1").
			Numkeys(2).Key(ch...).Arg(strconv.Itoa(3*i), strconv.Itoa(3*i+1)).Build()).Error()
		if err != nil {
			t.Fatal(err)
		}
		if err := b.PublishToUsers(ctx, []string{"alice", "bob"}, strconv.Itoa(3*i+2)); err != nil {
			t.Fatal(err)
		}
	}
	evs := rec.waitFor(t, fmt.Sprintf("alice:%d", 3*n-1))
	if len(evs) != 3*n {
		t.Fatalf("%d deliveries, want %d: %q", len(evs), 3*n, evs)
	}
	for i, e := range evs {
		if want := fmt.Sprintf("alice:%d", i); e != want {
			t.Fatalf("delivery %d is %q, want %q", i, e, want)
		}
	}
	if losses, up := b.Live(); losses != 0 || !up {
		t.Fatalf("live = %d, %v; want 0, true", losses, up)
	}
}

// Close while a publisher keeps publishing neither deadlocks the embedded
// Redis nor leaves the delivery loop running; a later subscribe is refused.
func TestInProcessCloseUnderLoad(t *testing.T) {
	m, _ := startMiniredis(t)
	ctx := context.Background()
	b := NewInProcess(m, "")
	if err := b.Start(ctx, Handler{Message: func(string, string) {}}); err != nil {
		t.Fatal(err)
	}
	if err := b.SubscribeUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			default:
				m.Publish(b.keys.UserChannel("alice"), "x")
			}
		}
	}()
	b.Close()
	select {
	case <-b.Done():
	default:
		t.Fatal("Close returned before the loop ended")
	}
	close(stop)
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the embedded Redis is stuck after Close")
	}
	if err := b.SubscribeUser(ctx, "alice"); err == nil {
		t.Fatal("subscribe after Close succeeded")
	}
	if n := m.Publish(b.keys.UserChannel("alice"), "x"); n != 0 {
		t.Fatalf("%d receivers after Close, want 0", n)
	}
	leaktest.Wait(t, 5*time.Second, "github.com/chatstate/chatstate/fanout")
}
