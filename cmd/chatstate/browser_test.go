package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatstate/chatstate/internal/redistest"
)

// chromium is Debian's package (scripts/setup.sh installs it).
const chromium = "/usr/bin/chromium"

// TestBrowser opens the demo chat (/) as two users in two pages of
// Debian's chromium, driven by playwright-core, and the operator's
// dashboard (/admin), against Main in development mode
// (testdata/browser/demo.test.mjs). Screenshots of every page at a phone's
// and a desktop's size go to CHATSTATE_ARTIFACTS_DIR, by default
// artifacts/browser at the repository's root (gitignored).
func TestBrowser(t *testing.T) {
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("%s is required for the browser tests: run bash scripts/setup.sh", chromium)
	}
	dir := filepath.Join("testdata", "browser")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		t.Fatal("testdata/browser/node_modules is missing: run bash scripts/setup.sh")
	}
	artifacts := os.Getenv("CHATSTATE_ARTIFACTS_DIR")
	if artifacts == "" {
		artifacts = filepath.Join("..", "..", "artifacts", "browser")
	}
	artifacts, err := filepath.Abs(artifacts)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	url, cancel, done := startMain(t, map[string]string{
		"CHATSTATE_ADDR":     "127.0.0.1:0",
		"CHATSTATE_DATA_DIR": t.TempDir(),
		// The test sends more than a user's default 10 per minute.
		"CHATSTATE_MESSAGE_RATE_LIMIT": "1000",
		// The dashboard's node table shows heartbeat counts.
		"CHATSTATE_HEARTBEAT_INTERVAL": "500ms",
		"CHATSTATE_LOG_LEVEL":          "error",
	})
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is required for the browser tests (Node 20+)")
	}
	ctx, stop := context.WithTimeout(context.Background(), 2*time.Minute)
	defer stop()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "thread.test.mjs", "demo.test.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BASE_URL="+url, "API_KEY="+devAPIKey, "ARTIFACTS_DIR="+artifacts,
		// playwright starts chromium with a fresh profile under TMPDIR.
		"CHROMIUM="+chromium, "TMPDIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	t.Logf("node --test output:\n%s", out)
	if err != nil {
		t.Fatalf("browser tests failed: %v", err)
	}
	t.Logf("screenshots in %s", artifacts)
	stopMain(t, cancel, done)
}

// TestDemoInProduction: with an external Redis the demo is off unless
// CHATSTATE_DEMO=1, and even then the server mints no token and starts
// no conversation.
func TestDemoInProduction(t *testing.T) {
	redis := redistest.StartServer(t)
	env := map[string]string{
		"CHATSTATE_ADDR": "127.0.0.1:0", "REDIS_HOST": "127.0.0.1", "REDIS_PORT": fmt.Sprint(redis.Port),
		"CHATSTATE_KEY_PREFIX": redistest.Prefix(t), "CHATSTATE_JWT_SECRET": "prod-secret", "CHATSTATE_API_KEY": "prod-key",
		"CHATSTATE_STORE": "sqlite", "CHATSTATE_DATA_DIR": t.TempDir(), "CHATSTATE_LOG_LEVEL": "error", "CHATSTATE_DRAIN_WINDOW": "1ms",
	}
	get := func(url, method, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer x")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	url, cancel, done := startMain(t, env)
	if code, body := get(url+"/", "GET", ""); code != 404 || !strings.Contains(body, "CHATSTATE_DEMO=1") {
		t.Errorf("GET / without CHATSTATE_DEMO: %d %q", code, body)
	}
	if code, _ := get(url+"/admin", "GET", ""); code != 200 {
		t.Errorf("GET /admin: %d, want 200", code)
	}
	cancel()
	<-done

	env["CHATSTATE_DEMO"] = "1"
	url, cancel, done = startMain(t, env)
	defer func() { cancel(); <-done }()
	if code, body := get(url+"/", "GET", ""); code != 200 || !strings.Contains(body, "/static/app.js") {
		t.Errorf("GET / with CHATSTATE_DEMO=1: %d", code)
	}
	if code, body := get(url+"/demo/config", "GET", ""); code != 200 || !strings.Contains(body, `"mintsTokens":false`) {
		t.Errorf("GET /demo/config: %d %s", code, body)
	}
	if code, body := get(url+"/demo/token", "POST", `{"userId":"alice"}`); code != 403 || !strings.Contains(body, `"code":"forbidden"`) {
		t.Errorf("POST /demo/token in production: %d %s, want 403 forbidden", code, body)
	}
	if code, body := get(url+"/demo/conversations", "POST", `{"with":"bob"}`); code != 401 {
		t.Errorf("POST /demo/conversations with a bad token: %d %s, want 401", code, body)
	}
}
