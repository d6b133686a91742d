package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatstate/chatstate/internal/leaktest"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/gorilla/websocket"
)

// TestDrainE2E sends SIGTERM to gateway A while the official client is
// connected through a load balancer (testdata/e2e/drain.test.mjs): readiness
// fails, the in-flight ack arrives, the clients reconnect to B by
// themselves without their friends seeing them offline, a user who does not
// come back is announced offline, and A exits 0.
func TestDrainE2E(t *testing.T) {
	const window = 2 * time.Second
	redis := redistest.StartServer(t)
	env := faultEnv(t, redis)
	env["CHATSTATE_DRAIN_WINDOW"] = window.String()
	env["CHATSTATE_TEST_HOLD_ACK_UNTIL_DRAIN"] = drainHoldContent
	env["CHATSTATE_LOG_LEVEL"] = "info"
	var gws []*gatewayProc
	for _, id := range []string{"a", "b"} {
		e := map[string]string{"CHATSTATE_NODE_ID": "drain-" + id}
		for k, v := range env {
			e[k] = v
		}
		gws = append(gws, startGateway(t, e))
	}
	a := gws[0]
	runNodeTests(t, []string{
		"GATEWAY_A=" + a.URL, "GATEWAY_B=" + gws[1].URL, fmt.Sprintf("GATEWAY_A_PID=%d", a.cmd.Process.Pid),
		"CHATSTATE_API_KEY=" + env["CHATSTATE_API_KEY"], "CHATSTATE_JWT_SECRET=" + env["CHATSTATE_JWT_SECRET"],
		"HOLD_CONTENT=" + drainHoldContent,
	}, "drain.test.mjs")

	// The node test sent SIGTERM; A exits on its own once drained.
	exited := make(chan error, 1)
	go func() { exited <- a.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("gateway A after SIGTERM: %v, want exit status 0", err)
		}
	case <-time.After(window + 30*time.Second):
		t.Fatal("gateway A did not exit within the drain window + 30s")
	}
}

// drainHoldContent makes gateway A hold the ack of that message until its drain
// closes the sender's socket.
const drainHoldContent = "ack me during the drain"

// servePkgs are the packages whose goroutines serve must have joined when
// it returns.
var servePkgs = []string{"main"}

func init() {
	for _, p := range []string{"gateway", "socketio", "presence", "cleanup", "lease", "messaging", "httpapi", "cache", "directory", "sqlitestore", "internal/redisconn"} {
		servePkgs = append(servePkgs, "github.com/chatstate/chatstate/"+p)
	}
}

// When serve returns after a drain, every goroutine it started (gateway,
// sockets, presence heartbeat, cleanup jobs, message batcher, HTTP server)
// has ended.
func TestServeJoinsGoroutines(t *testing.T) {
	redis := redistest.StartServer(t)
	env := map[string]string{
		"CHATSTATE_ADDR":               "127.0.0.1:0",
		"REDIS_HOST":                   "127.0.0.1",
		"REDIS_PORT":                   fmt.Sprint(redis.Port),
		"CHATSTATE_KEY_PREFIX":         redistest.Prefix(t),
		"CHATSTATE_JWT_SECRET":         "join-secret",
		"CHATSTATE_API_KEY":            "join-api-key",
		"CHATSTATE_DATA_DIR":           t.TempDir(),
		"CHATSTATE_DRAIN_WINDOW":       "100ms",
		"CHATSTATE_HEARTBEAT_INTERVAL": "100ms",
		"CHATSTATE_LOG_LEVEL":          "error",
	}
	url, cancel, done := startMain(t, env)
	var tok strings.Builder
	if err := Main(context.Background(), []string{"token", "--user", "alice"}, func(k string) string { return env[k] }, &tok, io.Discard); err != nil {
		t.Fatal(err)
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(url, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	auth, _ := json.Marshal(map[string]string{"token": strings.TrimSpace(tok.String()), "deviceId": "d"})
	var got []string
	read := func() (string, error) {
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return "", err
			}
			if string(b) == "2" {
				ws.WriteMessage(websocket.TextMessage, []byte("3"))
				continue
			}
			got = append(got, string(b))
			return string(b), nil
		}
	}
	if open, err := read(); err != nil || !strings.HasPrefix(open, "0{") {
		t.Fatalf("open: %q %v", open, err)
	}
	ws.WriteMessage(websocket.TextMessage, append([]byte("40"), auth...))
	if c, err := read(); err != nil || !strings.HasPrefix(c, "40{") {
		t.Fatalf("connect: %q %v", c, err)
	}
	if len(leaktest.Running(servePkgs...)) == 0 {
		t.Fatal("no serve goroutine seen while serving: the leak check sees nothing")
	}

	cancel()
	for {
		if _, err := read(); err != nil {
			break
		}
	}
	if !slices.ContainsFunc(got, func(p string) bool { return strings.HasPrefix(p, `42["server:draining"`) }) {
		t.Fatalf("the socket closed without server:draining: %q", got)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Main: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Main did not return within 30s of cancel")
	}
	leaktest.Wait(t, 10*time.Second, servePkgs...)
}
