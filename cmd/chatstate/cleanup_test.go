package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/cache"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/chatstate/chatstate/presence"
	"github.com/chatstate/chatstate/pushqueue"
	"github.com/gorilla/websocket"
)

// TestCleanupAndStatsCommands runs a server in-process on a real Redis
// holding stale state, then `chatstate cleanup` against it until every job
// has removed its share (what each removed is in the printed JSON), and
// `chatstate stats`, whose JSON counts the keys the test made and the
// connection of a socket on the node (from its heartbeat).
func TestCleanupAndStatsCommands(t *testing.T) {
	redis := redistest.StartServer(t)
	prefix := redistest.Prefix(t)
	env := map[string]string{
		"CHATSTATE_ADDR":       "127.0.0.1:0",
		"REDIS_HOST":           "127.0.0.1",
		"REDIS_PORT":           fmt.Sprint(redis.Port),
		"CHATSTATE_KEY_PREFIX": prefix,
		"CHATSTATE_JWT_SECRET": "cleanup-secret",
		"CHATSTATE_API_KEY":    "cleanup-api-key",
		"CHATSTATE_DATA_DIR":   t.TempDir(),
		// The periodic rounds wait an hour: only the manual cleanup runs.
		"CHATSTATE_SESSION_SWEEP_INTERVAL":  "1h",
		"CHATSTATE_NOTIFICATION_INTERVAL":   "1h",
		"CHATSTATE_TYPING_SWEEP_INTERVAL":   "1h",
		"CHATSTATE_PRESENCE_SWEEP_INTERVAL": "1h",
		"CHATSTATE_HEARTBEAT_INTERVAL":      "100ms",
		"CHATSTATE_DRAIN_WINDOW":            "100ms",
		"CHATSTATE_LOG_LEVEL":               "error",
	}
	getenv := func(k string) string { return env[k] }
	url, cancel, done := startMain(t, env)

	// Stale state, written as other nodes would have: an expired session
	// next to a live one, an expired typing entry next to a live one, a
	// push job whose worker died holding its lease.
	client := redis.Client(t)
	ctx := redistest.Ctx(t)
	short := cache.New(client, cache.Config{KeyPrefix: prefix, SessionTTL: 100 * time.Millisecond})
	long := cache.New(client, cache.Config{KeyPrefix: prefix})
	for _, c := range []struct {
		c      *cache.Cache
		device string
	}{{short, "old"}, {long, "new"}} {
		if _, err := c.c.CreateSession(ctx, chatstate.Session{UserID: "u1", DeviceID: c.device}); err != nil {
			t.Fatal(err)
		}
	}
	quick := presence.New(client, presence.Config{KeyPrefix: prefix, TypingTTL: 100 * time.Millisecond})
	slow := presence.New(client, presence.Config{KeyPrefix: prefix, TypingTTL: time.Hour})
	if err := quick.SetUserTyping(ctx, "quick", "c1"); err != nil {
		t.Fatal(err)
	}
	if err := slow.SetUserTyping(ctx, "slow", "c1"); err != nil {
		t.Fatal(err)
	}
	q := pushqueue.New(client, pushqueue.Config{KeyPrefix: prefix, Lease: time.Second})
	if _, err := q.Enqueue(ctx, pushqueue.Job{ID: "n1:u1:d", Priority: chatstate.PriorityHigh, Payload: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	if jobs, err := q.Claim(ctx, 1); err != nil || len(jobs) != 1 {
		t.Fatalf("claim: %v %v", jobs, err)
	}

	run := func(args ...string) map[string]any {
		t.Helper()
		var out, errOut strings.Builder
		if err := Main(ctx, append(args, "--url", url), getenv, &out, &errOut); err != nil {
			t.Fatalf("chatstate %s: %v (stderr %s)", args[0], err, errOut.String())
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(out.String()), &m); err != nil {
			t.Fatalf("chatstate %s printed %q: %v", args[0], out.String(), err)
		}
		return m
	}
	removed := map[string]float64{}
	deadline := time.Now().Add(20 * time.Second)
	for removed["sessions"] == 0 || removed["typing"] == 0 || removed["notifications"] == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the manual cleanup did not remove the stale state: %v", removed)
		}
		res := run("cleanup")
		for _, job := range []string{"sessions", "presence", "typing", "notifications"} {
			r, ok := res[job].(map[string]any)
			if !ok {
				t.Fatalf("cleanup printed %v: no result for %s", res, job)
			}
			removed[job] += r["removed"].(float64)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
	if removed["sessions"] != 1 || removed["typing"] != 1 || removed["notifications"] != 1 {
		t.Fatalf("removed %v, want one of each", removed)
	}
	if s, err := long.Sessions(ctx, "u1"); err != nil || len(s) != 1 || s[0].DeviceID != "new" {
		t.Fatalf("sessions after the cleanup: %v %v", s, err)
	}

	// The rounds are counted and the queue depth recorded.
	res, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	scraped, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{`chatstate_cleanup_removed_total{job="sessions"} 1`, `chatstate_cleanup_removed_total{job="notifications"} 1`,
		`chatstate_cleanup_runs_total{job="typing",result="ok"}`, `chatstate_push_queue_depth{state="high"} 1`} {
		if !strings.Contains(string(scraped), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// A socket on the node: its connection reaches the stats through the
	// node's heartbeat.
	closeSocket := connectSocket(t, url, env["CHATSTATE_JWT_SECRET"], "alice")
	defer closeSocket()
	var stats map[string]any
	for {
		stats = run("stats")
		if stats["connections"] == 1.0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats never counted the socket: %v", stats)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
	nodes, _ := stats["nodes"].([]any)
	if len(nodes) != 1 || nodes[0].(map[string]any)["instance"] != stats["node"] || nodes[0].(map[string]any)["connections"] != 1.0 || stats["nodeConnections"] != 1.0 {
		t.Fatalf("stats nodes %v (node %v)", stats["nodes"], stats["node"])
	}
	kinds := stats["keys"].(map[string]any)["kinds"].(map[string]any)
	// Sessions: u1's and the one alice's connect created.
	if kinds["sessions"] != 2.0 || kinds["typing"] != 1.0 || kinds["nodes"] != 1.0 || kinds["pushq"].(float64) < 2 {
		t.Fatalf("keys per kind %v", kinds)
	}
	if stats["onlineUsers"] != 1.0 {
		t.Errorf("online users %v, want alice", stats["onlineUsers"])
	}
	if pq := stats["pushQueue"].(map[string]any); pq["high"] != 1.0 || pq["leased"] != 0.0 || pq["dead"] != 0.0 {
		t.Errorf("push queue %v, want the requeued job waiting", pq)
	}
	rs := stats["redis"].(map[string]any)
	if rs["usedMemory"].(float64) <= 0 || rs["usedMemoryPeak"].(float64) <= 0 || rs["maxMemoryPolicy"] == "" {
		t.Errorf("redis %v", rs)
	}
	if typing := stats["typing"].(map[string]any); typing["live"] != 1.0 {
		t.Errorf("typing %v, want the live entry", typing)
	}

	// A wrong key is refused with the server's error.
	var errOut strings.Builder
	err = Main(ctx, []string{"stats", "--url", url}, func(k string) string {
		if k == "CHATSTATE_API_KEY" {
			return "wrong"
		}
		return ""
	}, io.Discard, &errOut)
	if err == nil || !strings.Contains(err.Error(), "unauthorized") {
		t.Fatalf("stats with a wrong key: %v", err)
	}

	closeSocket()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Main: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Main did not return within 30s of cancel")
	}
}

// connectSocket opens a Socket.IO connection as user (Engine.IO v4 over a
// raw websocket) and returns its close.
func connectSocket(t *testing.T, url, secret, user string) func() {
	t.Helper()
	var tok strings.Builder
	if err := Main(context.Background(), []string{"token", "--user", user}, func(k string) string {
		if k == "CHATSTATE_JWT_SECRET" {
			return secret
		}
		return ""
	}, &tok, io.Discard); err != nil {
		t.Fatal(err)
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(url, "http")+"/socket.io/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, b, err := ws.ReadMessage(); err != nil || !strings.HasPrefix(string(b), "0{") {
		t.Fatalf("open: %q %v", b, err)
	}
	auth, _ := json.Marshal(map[string]string{"token": strings.TrimSpace(tok.String()), "deviceId": "d"})
	ws.WriteMessage(websocket.TextMessage, append([]byte("40"), auth...))
	if _, b, err := ws.ReadMessage(); err != nil || !strings.HasPrefix(string(b), "40{") {
		t.Fatalf("connect: %q %v", b, err)
	}
	// Answer the server's pings while the test runs.
	stop := make(chan struct{})
	go func() {
		for {
			ws.SetReadDeadline(time.Now().Add(time.Minute))
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if string(b) == "2" {
				ws.WriteMessage(websocket.TextMessage, []byte("3"))
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	closed := false
	return func() {
		if !closed {
			closed = true
			close(stop)
			ws.Close()
		}
	}
}
