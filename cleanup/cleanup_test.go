package cleanup

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/cache"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/chatstate/chatstate/presence"
)

func TestMain(m *testing.M) { os.Exit(redistest.Run(m)) }

func TestRunOnce(t *testing.T) {
	client, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	c := cache.New(client, cache.Config{KeyPrefix: prefix, SessionTTL: 200 * time.Millisecond})
	crashed := presence.New(client, presence.Config{KeyPrefix: prefix, NodeID: "crashed", NodeTimeout: 300 * time.Millisecond})
	alive := presence.New(client, presence.Config{KeyPrefix: prefix, NodeID: "alive", NodeTimeout: 300 * time.Millisecond})
	for _, s := range []*presence.State{crashed, alive} {
		if err := s.Heartbeat(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := crashed.SetUserOnline(ctx, "ghost", "d", "s1"); err != nil {
		t.Fatal(err)
	}
	if _, err := alive.SetUserOnline(ctx, "here", "d", "s2"); err != nil {
		t.Fatal(err)
	}
	// Connected but invisible: in-app, never pushed.
	if _, err := alive.SetUserOnline(ctx, "hidden", "d", "s3"); err != nil {
		t.Fatal(err)
	}
	if _, err := alive.UpdateUserStatus(ctx, "hidden", chatstate.StatusInvisible); err != nil {
		t.Fatal(err)
	}
	// old1 has an idle session and an active one: the sweep removes the
	// idle one. (A user whose sessions all expire loses the whole key.)
	for _, d := range []string{"idle", "active"} {
		if _, err := c.CreateSession(ctx, chatstate.Session{UserID: "old1", DeviceID: d}); err != nil {
			t.Fatal(err)
		}
	}
	var announced []chatstate.Presence
	cl := New(Config{KeyPrefix: prefix}, Deps{
		Redis: client, Sessions: c, Presence: alive,
		OnPresenceChange: func(_ context.Context, p chatstate.Presence) error {
			announced = append(announced, p)
			return nil
		},
	})

	// Wait until the crashed node's heartbeat is stale and the sessions expired.
	deadline := time.Now().Add(5 * time.Second)
	var res Result
	for res.UsersWentOffline == 0 || res.SessionsRemoved == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("cleanup did not find the stale state: %+v", res)
		}
		if err := alive.Heartbeat(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := c.UpdateSessionActivity(ctx, "old1", "active"); err != nil {
			t.Fatal(err)
		}
		r, err := cl.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		res.UsersWentOffline += r.UsersWentOffline
		res.SessionsRemoved += r.SessionsRemoved
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	if len(announced) != 1 || announced[0].UserID != "ghost" || announced[0].Online {
		t.Fatalf("announced %+v, want ghost offline once", announced)
	}
	if s, err := c.Sessions(ctx, "old1"); err != nil || len(s) != 1 || s[0].DeviceID != "active" {
		t.Fatalf("sessions after the sweep: %v %v", s, err)
	}
}

func TestLockLetsOneNodeRunARound(t *testing.T) {
	client, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	a := New(Config{KeyPrefix: prefix, Owner: "a"}, Deps{Redis: client})
	b := New(Config{KeyPrefix: prefix, Owner: "b"}, Deps{Redis: client})
	if !a.lock(ctx, "job", time.Second) {
		t.Fatal("first lock must succeed")
	}
	if b.lock(ctx, "job", time.Second) {
		t.Fatal("second node must not get the same round")
	}
	if !b.lock(ctx, "other", time.Second) {
		t.Fatal("locks are per job")
	}
}
