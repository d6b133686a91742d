package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/mongotest"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/chatstate/chatstate/mongostore"
)

// faultEnv is the environment of the gateways of the fault scenarios: one
// redis-server (nil: the caller names its Redis), one MongoDB-wire store,
// short node timeouts so a dead node's users go offline in seconds, and a
// message rate limit the load stays under.
func faultEnv(t *testing.T, redis *redistest.Server) map[string]string {
	env := map[string]string{
		"CHATSTATE_KEY_PREFIX":              redistest.Prefix(t),
		"CHATSTATE_JWT_SECRET":              "e2e-secret",
		"CHATSTATE_API_KEY":                 "e2e-api-key",
		"CHATSTATE_MESSAGE_RATE_LIMIT":      "100000",
		"CHATSTATE_MESSAGE_RATE_WINDOW":     "60s",
		"CHATSTATE_NODE_TIMEOUT":            "3s",
		"CHATSTATE_HEARTBEAT_INTERVAL":      "500ms",
		"CHATSTATE_PRESENCE_SWEEP_INTERVAL": "1s",
		"CHATSTATE_LOG_LEVEL":               "warn",
		"MONGODB_URI":                       mongotest.Start(t),
	}
	if redis != nil {
		env["REDIS_HOST"], env["REDIS_PORT"] = "127.0.0.1", fmt.Sprint(redis.Port)
	}
	return env
}

func startGateways(t *testing.T, env map[string]string, ids ...string) []*gatewayProc {
	var gws []*gatewayProc
	for _, id := range ids {
		e := map[string]string{"CHATSTATE_NODE_ID": "node-" + id}
		for k, v := range env {
			e[k] = v
		}
		gws = append(gws, startGateway(t, e))
	}
	return gws
}

// runScenario runs `node file` from testdata/e2e with env. The script says
// "@@<name>" on a line of its own when the Go side must act (stop Redis,
// say); act runs it and answers with say(line), which the script reads on
// its stdin. It fails t if the script fails.
func runScenario(t *testing.T, env []string, file string, act func(name string, say func(string))) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := nodeCommand(ctx, t, env, "--test-reporter=spec", file)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	var mu sync.Mutex
	cmd.Stderr = writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) })
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		mu.Lock()
		out.WriteString(line + "\n")
		mu.Unlock()
		if name, ok := strings.CutPrefix(line, "@@"); ok {
			act(name, func(reply string) { io.WriteString(stdin, reply+"\n") })
		}
	}
	err = cmd.Wait()
	stdin.Close()
	t.Logf("node %s output:\n%s", file, out.String())
	if err != nil {
		t.Fatalf("%s failed: %v", file, err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// checkStore reads the scenario's result (RESULT_FILE: its conversations
// and every acked message) and checks it against the store itself, not
// through the API: each (sender, clientMessageId) and each seq is stored
// once per conversation, and every acked message is stored under the id and
// seq of its ack.
func checkStore(t *testing.T, mongoURI, resultFile string) {
	t.Helper()
	b, err := os.ReadFile(resultFile)
	if err != nil {
		t.Fatalf("the scenario wrote no result: %v", err)
	}
	var res struct {
		Convs []string
		Acked []chatstate.Message
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	ctx := redistest.Ctx(t)
	store, err := mongostore.Open(ctx, mongoURI, "", mongostore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close(ctx)
	byID := map[string]chatstate.Message{}
	for _, conv := range res.Convs {
		seqs, cmids := map[int64]bool{}, map[string]bool{}
		for after := int64(0); ; {
			page, err := store.MessagesAfter(ctx, conv, after, 500)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range page {
				key := m.SenderID + ":" + m.ClientMessageID
				if seqs[m.Seq] || cmids[key] {
					t.Errorf("%s: seq %d or clientMessageId %s stored twice", conv, m.Seq, key)
				}
				seqs[m.Seq], cmids[key] = true, true
				byID[m.ID] = m
			}
			if len(page) < 500 {
				break
			}
			after = page[len(page)-1].Seq
		}
	}
	for _, a := range res.Acked {
		if s, ok := byID[a.ID]; !ok || s.Seq != a.Seq || s.ClientMessageID != a.ClientMessageID || s.ConversationID != a.ConversationID {
			t.Errorf("acked %+v, stored %+v (found %v)", a, s, ok)
		}
	}
	if len(res.Acked) == 0 {
		t.Error("the scenario acked nothing")
	}
	t.Logf("store: %d messages, %d acked, all stored once under their ack", len(byID), len(res.Acked))
}

// get returns the status of GET url, or 0 when the request failed.
func get(url string) int {
	c := http.Client{Timeout: 5 * time.Second}
	res, err := c.Get(url)
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

// TestRedisOutageUnderLoad stops redis-server for 10 s while 20 devices
// send through two gateways, then starts it again empty (no persistence).
// outage.mjs asserts what clients see: only unavailable refusals with
// retryAfterMs, every ack within its deadline, sends acked again without a
// restart, resync and presence restored, seqs continued from the store,
// nothing acked lost. This side asserts what operators see: /redis/health
// fails during the outage, the processes survive and /healthz stays ok.
func TestRedisOutageUnderLoad(t *testing.T) {
	redis := redistest.StartServer(t)
	env := faultEnv(t, redis)
	gws := startGateways(t, env, "a", "b")
	const outage = 10 * time.Second
	result := filepath.Join(t.TempDir(), "result.json")
	runScenario(t, []string{
		"GATEWAY_A=" + gws[0].URL, "GATEWAY_B=" + gws[1].URL, "RESULT_FILE=" + result,
		"CHATSTATE_API_KEY=" + env["CHATSTATE_API_KEY"], "CHATSTATE_JWT_SECRET=" + env["CHATSTATE_JWT_SECRET"],
	}, "outage.mjs", func(name string, say func(string)) {
		if name != "stop-redis" {
			t.Errorf("unexpected request %q from the script", name)
			return
		}
		redis.Stop()
		stopped := time.Now()
		for _, g := range gws {
			deadline := time.Now().Add(outage)
			for get(g.URL+"/redis/health") != http.StatusServiceUnavailable {
				if time.Now().After(deadline) {
					t.Errorf("%s/redis/health did not report the outage", g.URL)
					break
				}
				time.Sleep(50 * time.Millisecond) // polling with a deadline
			}
			if s := get(g.URL + "/healthz"); s != http.StatusOK {
				t.Errorf("%s/healthz during the outage: %d", g.URL, s)
			}
		}
		say("redis-stopped")
		// The outage lasts its full length: the fault, not a wait for an
		// event.
		time.Sleep(time.Until(stopped.Add(outage)))
		redis.Restart(t)
		say("redis-restarted")
	})
	checkStore(t, env["MONGODB_URI"], result)
	// No panic: both processes still answer.
	for _, g := range gws {
		if s := get(g.URL + "/healthz"); s != http.StatusOK {
			t.Errorf("%s/healthz after the outage: %d", g.URL, s)
		}
		if s := get(g.URL + "/redis/health"); s != http.StatusOK {
			t.Errorf("%s/redis/health after the outage: %d", g.URL, s)
		}
	}
}

// TestNodeKillUnderLoad kills one of three gateways (SIGKILL, by its
// fault-injection hook mid-send) while 24 devices send; nodekill.mjs
// asserts what clients see. This side checks C died and A and B did not.
func TestNodeKillUnderLoad(t *testing.T) { testNodeKill(t, faultEnv(t, redistest.StartServer(t))) }

// The same on a Cluster: the crashed send's stored message is published by
// another node's settle with SPUBLISH to its conversation's shard channel.
func TestNodeKillUnderLoadOnCluster(t *testing.T) {
	env := faultEnv(t, nil)
	delete(env, "REDIS_HOST")
	delete(env, "REDIS_PORT")
	env["REDIS_CLUSTER_ADDRS"] = strings.Join(redistest.StartCluster(t).Addrs, ",")
	testNodeKill(t, env)
}

func testNodeKill(t *testing.T, env map[string]string) {
	gws := startGateways(t, env, "a", "b")
	c := map[string]string{"CHATSTATE_TEST_FAIL_AFTER_PERSIST": crashContent}
	for k, v := range env {
		c[k] = v
	}
	gws = append(gws, startGateways(t, c, "c")...)
	result := filepath.Join(t.TempDir(), "result.json")
	runScenario(t, []string{
		"GATEWAY_A=" + gws[0].URL, "GATEWAY_B=" + gws[1].URL, "GATEWAY_C=" + gws[2].URL, "RESULT_FILE=" + result,
		"CHATSTATE_API_KEY=" + env["CHATSTATE_API_KEY"], "CHATSTATE_JWT_SECRET=" + env["CHATSTATE_JWT_SECRET"],
		"CRASH_CONTENT=" + crashContent,
	}, "nodekill.mjs", func(name string, _ func(string)) {
		t.Errorf("unexpected request %q from the script", name)
	})
	checkStore(t, env["MONGODB_URI"], result)
	// C was killed on purpose: reap it rather than stop it.
	if err := gws[2].cmd.Wait(); err == nil {
		t.Error("gateway C exited cleanly: it was to be killed")
	}
	for _, g := range gws[:2] {
		if s := get(g.URL + "/healthz"); s != http.StatusOK {
			t.Errorf("%s/healthz after the kill: %d", g.URL, s)
		}
	}
}
