package gateway

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/chatstate/chatstate/presence"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// failingSockets refuses every socket record, as a Cluster shard that is
// failing over refuses the socket's slot while the user's slot answers.
type failingSockets struct{ chatstate.SocketRegistry }

func (failingSockets) RegisterSocket(context.Context, chatstate.SocketRecord, time.Duration) error {
	return chatstate.Errorf(chatstate.EUNAVAILABLE, "socket records are unavailable")
}

// A connect refused after its device went online takes the device back
// offline: otherwise the user shows online, and gets no pushes, for the
// device TTL although no socket exists.
func TestRefusedConnectLeavesNoPresence(t *testing.T) {
	client, prefix := redistest.Start(t)
	var state *presence.State
	n := startNodeDeps(t, client, openStore(t), prefix, Config{NodeID: "a"}, func(d *Deps) {
		state = d.State.(*presence.State)
		d.Sockets = failingSockets{state}
	})
	_, err := dialClient(t, n.url, map[string]string{"token": tokenFor("ghost", testSecret, time.Now().Add(time.Hour)), "deviceId": "phone"})
	if err == nil || !strings.Contains(err.Error(), `"unavailable"`) {
		t.Fatalf("connect with failing socket records: %v, want refused as unavailable", err)
	}
	ctx := redistest.Ctx(t)
	// The undo runs in the background: poll with a deadline.
	poll(t, "the refused device offline and its session gone", func() bool {
		online, err := state.IsUserOnline(ctx, "ghost")
		_, serr := n.cache.Session(ctx, "ghost", "phone")
		return err == nil && !online && chatstate.ErrorCode(serr) == chatstate.ENOTFOUND
	})
}

// flakyOffline fails SetSocketOffline while failing is set, as a Redis that
// is down or failing over does.
type flakyOffline struct {
	chatstate.RealTimeState
	failing atomic.Bool
	calls   atomic.Int64
}

func (f *flakyOffline) SetSocketOffline(ctx context.Context, userID, deviceID, socketID string) (chatstate.PresenceChange, error) {
	f.calls.Add(1)
	if f.failing.Load() {
		return chatstate.PresenceChange{}, chatstate.Errorf(chatstate.EUNAVAILABLE, "redis is failing over")
	}
	return f.RealTimeState.SetSocketOffline(ctx, userID, deviceID, socketID)
}

// A disconnect while Redis refuses the offline is retried until Redis
// answers: the user goes offline for friends, presence and sessions then,
// not at the device TTL.
func TestDisconnectDuringOutageGoesOfflineOnceRedisAnswers(t *testing.T) {
	client, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	var state *presence.State
	flaky := &flakyOffline{}
	n := startNodeDeps(t, client, openStore(t), prefix, Config{NodeID: "a"}, func(d *Deps) {
		state = d.State.(*presence.State)
		flaky.RealTimeState = state
		d.State, d.Sockets = flaky, state
	})
	if err := n.dir.SetFriends(ctx, "alice", []string{"bob"}); err != nil {
		t.Fatal(err)
	}
	bob := connectUser(t, n, "bob")
	alice := connectDevice(t, n, "alice", "phone", nil)
	bob.waitEvent("presence", func(m map[string]any) bool { return m["userId"] == "alice" && m["online"] == true })

	flaky.failing.Store(true)
	alice.ws.Close()
	poll(t, "a retry of the failed offline", func() bool { return flaky.calls.Load() >= 2 })
	if online, err := state.IsUserOnline(ctx, "alice"); err != nil || !online {
		t.Fatalf("alice offline while Redis refused it: %v %v", online, err)
	}
	flaky.failing.Store(false)
	bob.waitEvent("presence", func(m map[string]any) bool { return m["userId"] == "alice" && m["online"] == false })
	if online, err := state.IsUserOnline(ctx, "alice"); err != nil || online {
		t.Fatalf("alice online after the retry: %v %v", online, err)
	}
	if _, err := n.cache.Session(ctx, "alice", "phone"); chatstate.ErrorCode(err) != chatstate.ENOTFOUND {
		t.Fatalf("alice's session after the retry: %v, want not_found", err)
	}
}

// The same against a real hang: Redis frozen (SIGSTOP) while a user leaves.
// The offline waits in the queue and lands once Redis is thawed.
func TestDisconnectWhileRedisIsFrozen(t *testing.T) {
	srv := redistest.StartServer(t)
	client := srv.Client(t)
	prefix := redistest.Prefix(t)
	ctx := redistest.Ctx(t)
	n := startNode(t, client, openStore(t), prefix, "a", func(c *Config) { c.EventTimeout = 300 * time.Millisecond })
	if err := n.dir.SetFriends(ctx, "alice", []string{"bob"}); err != nil {
		t.Fatal(err)
	}
	bob := connectUser(t, n, "bob")
	alice := connectDevice(t, n, "alice", "phone", nil)
	bob.waitEvent("presence", func(m map[string]any) bool { return m["userId"] == "alice" && m["online"] == true })

	srv.Freeze(t)
	alice.ws.Close()
	poll(t, "the failed offline queued", func() bool { return gaugeValue(n.gw.m.offlinePending) == 1 })
	srv.Thaw(t)
	bob.waitEvent("presence", func(m map[string]any) bool { return m["userId"] == "alice" && m["online"] == false })
	poll(t, "the queue emptied", func() bool { return gaugeValue(n.gw.m.offlinePending) == 0 })
	state := presence.New(client, presence.Config{KeyPrefix: prefix, NodeID: "reader"})
	if online, err := state.IsUserOnline(ctx, "alice"); err != nil || online {
		t.Fatalf("alice online after the thaw: %v %v", online, err)
	}
}

func gaugeValue(g prometheus.Gauge) float64 {
	var m dto.Metric
	g.Write(&m)
	return m.GetGauge().GetValue()
}
