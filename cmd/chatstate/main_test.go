package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gatewaypkg "github.com/chatstate/chatstate/gateway"
	"github.com/chatstate/chatstate/internal/mongotest"
	"github.com/chatstate/chatstate/internal/redistest"
)

// TestMain doubles as the gateway process of the end-to-end tests: with
// CHATSTATE_TEST_MAIN=1 the test binary runs Main instead of the tests, so
// the tests start real separate processes without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("CHATSTATE_TEST_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	// Both shared servers (redis-server, FerretDB) stop when the tests end.
	os.Exit(redistest.Run(runFunc(func() int { return mongotest.Run(m) })))
}

type runFunc func() int

func (f runFunc) Run() int { return f() }

// gatewayProc is one chatstate serve process.
type gatewayProc struct {
	URL string
	cmd *exec.Cmd
}

// startGateway runs `chatstate serve` in a child process with env and waits
// until it prints its address.
func startGateway(t *testing.T, env map[string]string) *gatewayProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "serve")
	// A short drain keeps the SIGTERM of the cleanup quick; env may override it.
	cmd.Env = append(os.Environ(), "CHATSTATE_TEST_MAIN=1", "CHATSTATE_ADDR=127.0.0.1:0", "CHATSTATE_DRAIN_WINDOW=1s")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "gateway.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g := &gatewayProc{cmd: cmd}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		}
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("gateway %s log:\n%s", g.URL, tail(string(b), 4000))
		}
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				addr <- a
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case a := <-addr:
		g.URL = "http://" + a
	case <-time.After(20 * time.Second):
		b, _ := os.ReadFile(logPath)
		t.Fatalf("gateway did not start within 20s:\n%s", b)
	}
	return g
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestE2E runs the official socket.io-client against three gateway
// processes sharing one redis-server (testdata/e2e/*.test.mjs).
func TestE2E(t *testing.T) {
	redis := redistest.StartServer(t)
	env := map[string]string{
		"REDIS_HOST":                        "127.0.0.1",
		"REDIS_PORT":                        fmt.Sprint(redis.Port),
		"CHATSTATE_KEY_PREFIX":              redistest.Prefix(t),
		"CHATSTATE_JWT_SECRET":              "e2e-secret",
		"CHATSTATE_API_KEY":                 "e2e-api-key",
		"CHATSTATE_MESSAGE_RATE_LIMIT":      "30",
		"CHATSTATE_MESSAGE_RATE_WINDOW":     "60s",
		"CHATSTATE_TYPING_TTL":              "1s",
		"CHATSTATE_NODE_TIMEOUT":            "3s",
		"CHATSTATE_HEARTBEAT_INTERVAL":      "500ms",
		"CHATSTATE_PRESENCE_SWEEP_INTERVAL": "1s",
		"CHATSTATE_LOG_LEVEL":               "warn",
		// One store shared by the nodes: FerretDB in this process (or
		// MONGODB_URI when set), as a MongoDB deployment would be.
		"MONGODB_URI": mongotest.Start(t),
	}
	var gws []*gatewayProc
	for _, id := range []string{"a", "b", "c"} {
		e := map[string]string{"CHATSTATE_NODE_ID": "node-" + id}
		if id == "c" {
			e["CHATSTATE_TEST_FAIL_AFTER_PERSIST"] = crashContent
			// Its crashed send's seq stays unsettled until the resend.
			e["CHATSTATE_SETTLE_TIMEOUT"] = "60s"
		}
		for k, v := range env {
			e[k] = v
		}
		gws = append(gws, startGateway(t, e))
	}
	runNodeTests(t, []string{
		"GATEWAY_A=" + gws[0].URL, "GATEWAY_B=" + gws[1].URL, "GATEWAY_C=" + gws[2].URL,
		fmt.Sprintf("GATEWAY_C_PID=%d", gws[2].cmd.Process.Pid),
		"CHATSTATE_API_KEY=" + env["CHATSTATE_API_KEY"], "CHATSTATE_JWT_SECRET=" + env["CHATSTATE_JWT_SECRET"],
		"CHATSTATE_MESSAGE_RATE_LIMIT=" + env["CHATSTATE_MESSAGE_RATE_LIMIT"], "TYPING_TTL_MS=1000",
		"CRASH_CONTENT=" + crashContent,
	}, "auth.test.mjs", "api.test.mjs", "messages.test.mjs", "presence.test.mjs", "sessions.test.mjs", "reads.test.mjs", "timeline.test.mjs", "crash.test.mjs", "backend.test.mjs")
	// gateway C was killed on purpose; don't try to stop it.
	gws[2].cmd.Wait()
}

// crashContent makes gateway C kill itself after persisting the message.
const crashContent = "crash after persist"

// nodeCommand is node with args in testdata/e2e and env added.
func nodeCommand(ctx context.Context, t *testing.T, env []string, args ...string) *exec.Cmd {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is required for the end-to-end tests (Node 20+)")
	}
	dir := filepath.Join("testdata", "e2e")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "socket.io-client")); err != nil {
		t.Fatal("testdata/e2e/node_modules is missing: run bash scripts/setup.sh")
	}
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

// runNodeTests runs testdata/e2e test files with node's test runner.
func runNodeTests(t *testing.T, env []string, files ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := nodeCommand(ctx, t, env, append([]string{"--test", "--test-concurrency=1", "--test-reporter=spec"}, files...)...)
	out, err := cmd.CombinedOutput()
	t.Logf("node --test output:\n%s", out)
	if err != nil {
		t.Fatalf("end-to-end tests failed: %v", err)
	}
}

// launchMain runs serve in this process with env until cancel. It returns
// the address once the server listens (done then receives Main's result),
// or the error serve returned before listening.
func launchMain(t *testing.T, env map[string]string) (addr string, cancel func(), done <-chan error, err error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	pr, pw := io.Pipe()
	result := make(chan error, 1)
	go func() {
		err := Main(ctx, []string{"serve"}, func(k string) string { return env[k] }, pw, io.Discard)
		pw.Close()
		result <- err
	}()
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				listening <- a
			}
		}
	}()
	select {
	case a := <-listening:
		return a, cancel, result, nil
	case err := <-result:
		cancel()
		return "", cancel, result, err
	case <-time.After(30 * time.Second):
		cancel()
		t.Fatal("serve did not listen within 30s")
	}
	return "", cancel, result, nil
}

// startMain is launchMain for a server that must start: its URL.
func startMain(t *testing.T, env map[string]string) (url string, cancel func(), done <-chan error) {
	t.Helper()
	addr, cancel, done, err := launchMain(t, env)
	if err != nil {
		t.Fatalf("Main returned before listening: %v", err)
	}
	return "http://" + addr, cancel, done
}

// TestEmbeddedMode runs Main in-process with no REDIS_* variables: the
// zero-setup development mode (embedded Redis, development secrets) must be
// a working chat server for the official client.
func TestEmbeddedMode(t *testing.T) {
	env := map[string]string{
		"CHATSTATE_ADDR":               "127.0.0.1:0",
		"CHATSTATE_MESSAGE_RATE_LIMIT": "30",
		"CHATSTATE_TYPING_TTL":         "1s",
		"CHATSTATE_LOG_LEVEL":          "error",
		"CHATSTATE_DATA_DIR":           t.TempDir(),
	}
	url, cancel, done := startMain(t, env)
	runNodeTests(t, []string{
		"GATEWAY_A=" + url, "GATEWAY_B=" + url,
		"CHATSTATE_API_KEY=" + devAPIKey, "CHATSTATE_JWT_SECRET=" + devJWTSecret,
		"CHATSTATE_MESSAGE_RATE_LIMIT=30", "TYPING_TTL_MS=1000",
	}, "auth.test.mjs", "api.test.mjs", "messages.test.mjs", "presence.test.mjs", "reads.test.mjs", "timeline.test.mjs")
	stopMain(t, cancel, done)
}

// stopMain cancels a Main that startMain started and waits for it to
// return cleanly.
func stopMain(t *testing.T, cancel func(), done <-chan error) {
	t.Helper()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Main: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Main did not shut down within 15s of cancel")
	}
}

func TestToken(t *testing.T) {
	var out, errOut strings.Builder
	env := map[string]string{"CHATSTATE_JWT_SECRET": "s3"}
	if err := Main(context.Background(), []string{"token", "--user", "alice"}, func(k string) string { return env[k] }, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	v, err := gatewaypkg.NewVerifier([]byte("s3"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if sub, err := v.Verify(strings.TrimSpace(out.String())); err != nil || sub != "alice" {
		t.Fatalf("token verifies as %q, %v", sub, err)
	}
	if err := Main(context.Background(), []string{"token", "--user", "bad id"}, func(string) string { return "" }, &out, &errOut); err == nil {
		t.Fatal("invalid user must be refused")
	}
}

// startTwoGateways starts two gateways on the Redis that redis names and a
// fresh MongoDB-wire store, and returns a client script's environment for
// them: GATEWAY_A, GATEWAY_B, CHATSTATE_API_KEY, CHATSTATE_JWT_SECRET.
func startTwoGateways(t *testing.T, redis map[string]string) []string {
	t.Helper()
	env := map[string]string{
		"CHATSTATE_KEY_PREFIX": redistest.Prefix(t),
		"CHATSTATE_JWT_SECRET": "e2e-secret",
		"CHATSTATE_API_KEY":    "e2e-api-key",
		// The senders pace themselves; the limit is not under test here.
		"CHATSTATE_MESSAGE_RATE_LIMIT": "100000",
		"CHATSTATE_LOG_LEVEL":          "warn",
		"MONGODB_URI":                  mongotest.Start(t),
	}
	maps.Copy(env, redis)
	var urls []string
	for _, id := range []string{"a", "b"} {
		e := map[string]string{"CHATSTATE_NODE_ID": "node-" + id}
		maps.Copy(e, env)
		urls = append(urls, startGateway(t, e).URL)
	}
	return []string{"GATEWAY_A=" + urls[0], "GATEWAY_B=" + urls[1],
		"CHATSTATE_API_KEY=" + env["CHATSTATE_API_KEY"], "CHATSTATE_JWT_SECRET=" + env["CHATSTATE_JWT_SECRET"]}
}
