package socketio

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// e2eServer is the server the official-client scenarios in
// testdata/js/e2e.mjs talk to.
func e2eServer(t *testing.T) (*Server, *httptest.Server, *reasons) {
	t.Helper()
	srv := NewServer(Config{PingInterval: time.Second, PingTimeout: time.Second})
	rs := &reasons{}
	srv.OnConnect(func(c *Conn, auth json.RawMessage) error {
		var a struct{ Token string }
		_ = json.Unmarshal(auth, &a)
		switch a.Token {
		case "":
			return errors.New("token required")
		case "good":
			c.SetData("user-good")
			return nil
		}
		return &ConnectError{Message: "unauthorized", Data: map[string]string{"code": "unauthorized"}}
	})
	srv.OnEvent(func(c *Conn, ev *Event) {
		switch ev.Name {
		case "echo":
			args := make([]any, len(ev.Args))
			for i, a := range ev.Args {
				args[i] = a
			}
			_ = ev.Ack(args...)
		case "whoami":
			_ = ev.Ack(c.Data())
		case "bin":
			args := []any{ev.Args[0]}
			for _, b := range ev.Attachments {
				args = append(args, b)
			}
			_ = c.Emit("bin-back", args...)
		case "bin-ack":
			_ = ev.Ack(ev.Attachments[0])
		case "please-ask":
			var n int
			_ = json.Unmarshal(ev.Args[0], &n)
			go func() {
				res, err := c.EmitWithAck(context.Background(), "ask", n)
				if err != nil {
					_ = c.Emit("answer", err.Error())
					return
				}
				_ = c.Emit("answer", res)
			}()
		case "kick-me":
			c.Disconnect()
		}
	})
	srv.OnDisconnect(func(c *Conn, reason string) { rs.add(c.ID(), reason) })
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return srv, hs, rs
}

type reasons struct {
	mu  sync.Mutex
	all map[string][]string
}

func (r *reasons) add(id, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.all == nil {
		r.all = map[string][]string{}
	}
	r.all[id] = append(r.all[id], reason)
}

func (r *reasons) snapshot() map[string][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string][]string{}
	for k, v := range r.all {
		out[k] = append([]string(nil), v...)
	}
	return out
}

func nodeOrFail(t *testing.T) (node, dir string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not installed: run scripts/setup.sh (and install Node.js)")
	}
	dir, _ = filepath.Abs("testdata/js")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "socket.io-client")); err != nil {
		t.Fatal("testdata/js/node_modules is missing: run scripts/setup.sh")
	}
	return node, dir
}

func TestE2EOfficialClient(t *testing.T) {
	node, dir := nodeOrFail(t)
	cases := map[string][]string{ // scenario -> OnDisconnect reasons expected
		"websocket": {ReasonClientDisconnect},
		"upgrade":   {ReasonClientDisconnect},
		"polling":   {ReasonClientDisconnect},
		"auth":      {ReasonClientDisconnect},
		"acks":      {ReasonClientDisconnect},
		"binary":    {ReasonClientDisconnect},
		"kick":      {ReasonServerDisconnect, ReasonServerDisconnect},
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			srv, hs, rs := e2eServer(t)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, "e2e.mjs", hs.URL, name)
			cmd.Dir = dir
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("node %s: %v\n%s", name, err, out)
			}
			// Every socket the client opened must be reported gone once.
			deadline := time.Now().Add(5 * time.Second)
			for srv.Count() != 0 || countReasons(rs.snapshot()) < len(want) {
				if time.Now().After(deadline) {
					t.Fatalf("after %s: Count=%d reasons=%v", name, srv.Count(), rs.snapshot())
				}
				time.Sleep(5 * time.Millisecond)
			}
			got := rs.snapshot()
			var flat []string
			for _, rr := range got {
				if len(rr) != 1 {
					t.Errorf("OnDisconnect fired %d times for one socket: %v", len(rr), rr)
				}
				flat = append(flat, rr...)
			}
			if len(flat) != len(want) {
				t.Fatalf("reasons %v, want %v", flat, want)
			}
			for _, r := range flat {
				if r != want[0] {
					t.Errorf("reason %q, want %q", r, want[0])
				}
			}
		})
	}
}

func countReasons(m map[string][]string) int {
	n := 0
	for _, v := range m {
		n += len(v)
	}
	return n
}
