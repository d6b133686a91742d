package push

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/cache"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/chatstate/chatstate/presence"
	"github.com/chatstate/chatstate/pushqueue"
	"github.com/chatstate/chatstate/sqlitestore"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// failingPresence fails its first fails Connected calls, as Redis does in a
// blip or a failover.
type failingPresence struct {
	Presence
	fails atomic.Int64
}

func (p *failingPresence) Connected(ctx context.Context, ids []string) (map[string]bool, error) {
	if p.fails.Add(-1) >= 0 {
		return nil, chatstate.Errorf(chatstate.EUNAVAILABLE, "redis is failing over")
	}
	return p.Presence.Connected(ctx, ids)
}

// failingInbox fails the first list entry of one user.
type failingInbox struct {
	Inbox
	user  string
	fails atomic.Int64
}

func (in *failingInbox) AddNotification(ctx context.Context, nt chatstate.Notification) (chatstate.Notification, error) {
	if nt.UserID == in.user && in.fails.Add(-1) >= 0 {
		return nt, chatstate.Errorf(chatstate.EUNAVAILABLE, "redis is failing over")
	}
	return in.Inbox.AddNotification(ctx, nt)
}

// A round that fails (the presence read twice, then one member's list
// entry after another member's went in) is retried from where it stopped:
// every offline member gets one entry and one push per device, no one twice.
func TestNotifierRetriesAFailedRoundFromWhereItStopped(t *testing.T) {
	client, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	state := presence.New(client, presence.Config{KeyPrefix: prefix, NodeID: "n"})
	if err := state.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	cch := cache.New(client, cache.Config{KeyPrefix: prefix})
	store, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "chat.db"), sqlitestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close(context.Background()) })
	for _, u := range []string{"bob", "carol"} {
		if err := store.SetDeviceToken(ctx, u, chatstate.DeviceToken{DeviceID: "phone", Platform: "android", Token: "tok-" + u}); err != nil {
			t.Fatal(err)
		}
	}
	q := pushqueue.New(client, pushqueue.Config{KeyPrefix: prefix})
	pres := &failingPresence{Presence: state}
	pres.fails.Store(2)
	inbox := &failingInbox{Inbox: cch, user: "carol"}
	inbox.fails.Store(1)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	n := NewNotifier(pres, store, inbox, q, m, NotifierConfig{Pushing: true})
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go n.Run(runCtx)

	msg := chatstate.Message{ID: "m1", ConversationID: "c1", SenderID: "alice", Seq: 1, Content: "hi", CreatedAt: time.Now().UnixMilli()}
	n.MessageSent(msg, []string{"alice", "bob", "carol"}, nil)

	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := q.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		list, err := cch.Notifications(ctx, "carol", 10)
		if err != nil {
			t.Fatal(err)
		}
		if st.Normal+st.High == 2 && len(list) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the retries: queue %+v, carol's list %d entries; want 2 pushes and 1 entry", st, len(list))
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	for _, u := range []string{"bob", "carol"} {
		list, err := cch.Notifications(ctx, u, 10)
		if err != nil || len(list) != 1 || list[0].ID != "m1" {
			t.Fatalf("%s's list %+v %v, want the one entry of m1", u, list, err)
		}
	}
	if got := testutil.ToFloat64(m.outcomes.WithLabelValues("notifier", "retried")); got != 3 {
		t.Fatalf("retried %v rounds, want 3 (two presence reads, one list entry)", got)
	}
}
