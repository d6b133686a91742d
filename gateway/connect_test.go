package gateway

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/chatstate/chatstate/presence"
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
