package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chatstate/chatstate/internal/redistest"
)

// debianPython is Debian's interpreter: python3-socketio and its transports
// (python3-websocket, python3-requests) are installed for it by
// scripts/setup.sh, whatever python3 comes first on PATH.
const debianPython = "/usr/bin/python3"

// TestPythonClient runs python-socketio's client (testdata/python) against
// two gateway processes sharing one redis-server and one MongoDB-protocol
// store: messages across nodes over websocket and polling, idempotent
// resends, sync after a reconnect, presence and typing, error codes and a
// refused token.
func TestPythonClient(t *testing.T) {
	if err := exec.Command(debianPython, "-c", "import socketio, websocket, requests").Run(); err != nil {
		t.Fatalf("python3-socketio is missing for %s (%v): run bash scripts/setup.sh", debianPython, err)
	}
	redis := redistest.StartServer(t)
	vars := startTwoGateways(t, map[string]string{"REDIS_HOST": "127.0.0.1", "REDIS_PORT": fmt.Sprint(redis.Port)})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// The client library leaves sockets to the collector at close: its
	// ResourceWarnings are noise here.
	cmd := exec.CommandContext(ctx, debianPython, "-W", "ignore::ResourceWarning", "-m", "unittest", "-v", "test_client")
	cmd.Dir = filepath.Join("testdata", "python")
	cmd.Env = append(append(cmd.Environ(), vars...), "PYTHONDONTWRITEBYTECODE=1")
	out, err := cmd.CombinedOutput()
	t.Logf("python -m unittest output:\n%s", out)
	if err != nil {
		t.Fatalf("python-socketio tests failed: %v", err)
	}
}
