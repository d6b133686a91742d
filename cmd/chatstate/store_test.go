package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/chatstate/chatstate/presence"
)

// mainProc is one in-process `chatstate serve`.
type mainProc struct {
	addr string
}

// runMain runs serve in-process with env until t ends. It returns once the
// server listens, or with the error serve returned before listening.
func runMain(t *testing.T, env map[string]string) (*mainProc, error) {
	t.Helper()
	addr, cancel, done, err := launchMain(t, env)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve %s: %v", addr, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("serve %s did not stop within 30s", addr)
		}
	})
	return &mainProc{addr: addr}, nil
}

// TestPerNodeSQLiteRefusedWhileAnotherNodeIsLive: with an external Redis
// and no MONGODB_URI, the first node starts on its own SQLite file; a
// second node on the same Redis refuses to (it would split history and
// deduplication) unless CHATSTATE_STORE=sqlite says so, and its refused
// start does not leave it counted as a live node.
func TestPerNodeSQLiteRefusedWhileAnotherNodeIsLive(t *testing.T) {
	redis := redistest.Shared(t)
	prefix := redistest.Prefix(t)
	node := func(id string, extra ...string) map[string]string {
		env := map[string]string{
			"REDIS_HOST": "127.0.0.1", "REDIS_PORT": fmt.Sprint(redis.Port), "CHATSTATE_KEY_PREFIX": prefix,
			"CHATSTATE_JWT_SECRET": "store-secret", "CHATSTATE_ADDR": "127.0.0.1:0", "CHATSTATE_LOG_LEVEL": "error",
			"CHATSTATE_NODE_ID": id, "CHATSTATE_DATA_DIR": t.TempDir(),
		}
		for i := 0; i < len(extra); i += 2 {
			env[extra[i]] = extra[i+1]
		}
		return env
	}
	if _, err := runMain(t, node("node-a")); err != nil {
		t.Fatalf("first node: %v", err)
	}

	_, err := runMain(t, node("node-b"))
	const fix = "set MONGODB_URI so all nodes share one store, or CHATSTATE_STORE=sqlite to run a single node with its own file"
	if err == nil || !strings.Contains(err.Error(), fix) || !strings.Contains(err.Error(), "node-a#") {
		t.Fatalf("second node without CHATSTATE_STORE: %v; want a refusal naming node-a and the fix %q", err, fix)
	}
	// The refused node marked itself dead: only node-a is live.
	watcher := presence.New(redis.Client(t), presence.Config{KeyPrefix: prefix, NodeID: "watcher"})
	live, err := watcher.OtherLiveNodes(redistest.Ctx(t))
	if err != nil || len(live) != 1 || !strings.HasPrefix(live[0], "node-a#") {
		t.Fatalf("live nodes after the refusal: %v, %v; want node-a only", live, err)
	}

	if _, err := runMain(t, node("node-c", "CHATSTATE_STORE", "sqlite")); err != nil {
		t.Fatalf("second node with CHATSTATE_STORE=sqlite: %v", err)
	}
}

// TestDevelopmentModeRefusesPublicAddress: the development secrets are
// public, so the embedded mode refuses to listen on every interface.
func TestDevelopmentModeRefusesPublicAddress(t *testing.T) {
	_, err := runMain(t, map[string]string{"CHATSTATE_ADDR": ":0", "CHATSTATE_DATA_DIR": t.TempDir()})
	const want = `CHATSTATE_ADDR=":0" is not a loopback address and the public development secrets would be used: set CHATSTATE_JWT_SECRET (or CHATSTATE_JWT_PUBLIC_KEY_FILE) and CHATSTATE_API_KEY`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	p, err := runMain(t, map[string]string{"CHATSTATE_ADDR": ":0", "CHATSTATE_DATA_DIR": t.TempDir(),
		"CHATSTATE_JWT_SECRET": "a-real-secret", "CHATSTATE_API_KEY": "a-real-key", "CHATSTATE_LOG_LEVEL": "error"})
	if err != nil {
		t.Fatalf("with real secrets: %v", err)
	}
	if !strings.HasPrefix(p.addr, "[::]:") && !strings.HasPrefix(p.addr, "0.0.0.0:") {
		t.Errorf("listening on %s, want every interface", p.addr)
	}
}
