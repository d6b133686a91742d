package socketio

import (
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// waitGoroutine polls (with a deadline) until some goroutine's stack holds
// every one of parts: it proves a call is parked where the test needs it.
func waitGoroutine(t *testing.T, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			hit := true
			for _, p := range parts {
				hit = hit && strings.Contains(g, p)
			}
			if hit {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no goroutine in %v within 5s", parts)
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
}

// CloseTransport called while the socket's handler runs waits for it: the
// handler's ack and the last frame arrive, then a websocket close without a
// socket.io DISCONNECT (so socket.io-client reports "transport close" and
// reconnects); an event sent after that is not handled.
func TestCloseTransportAfterInflightAck(t *testing.T) {
	h := newHarness(t, Config{})
	entered, release := make(chan struct{}), make(chan struct{})
	handled := make(chan string, 8)
	h.srv.OnEvent(func(c *Conn, ev *Event) {
		handled <- ev.Name
		if ev.Name == "slow" {
			close(entered)
			<-release
		}
		ev.Ack("done " + ev.Name)
	})
	ws := dialSocket(t, h)
	c := h.waitConn(t)
	_ = ws.WriteMessage(websocket.TextMessage, []byte(`421["slow"]`))
	<-entered
	last, err := EncodeEvent("bye", map[string]any{"reconnect": true})
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() { c.CloseTransport(last); close(closed) }()
	waitGoroutine(t, "(*Conn).CloseTransport", "Mutex")
	// An event that arrives while the close waits is read after it.
	_ = ws.WriteMessage(websocket.TextMessage, []byte(`422["late"]`))
	close(release)
	<-closed

	if got := readText(t, ws); got != `431["done slow"]` {
		t.Fatalf("first frame %q, want the in-flight ack", got)
	}
	if got := readText(t, ws); got != `42["bye",{"reconnect":true}]` {
		t.Fatalf("second frame %q, want the last frame", got)
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	mt, b, err := ws.ReadMessage()
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != websocket.CloseNormalClosure {
		t.Fatalf("after the last frame: %d %q %v, want a normal websocket close (no 41)", mt, b, err)
	}
	h.waitGone(t, ReasonServerShutdown)
	if name := <-handled; name != "slow" {
		t.Fatalf("handled %q first", name)
	}
	select {
	case name := <-handled:
		t.Fatalf("%q was handled after the close", name)
	default:
	}
	c.CloseTransport() // a second call is a no-op
}

// After StopAccepting, new handshakes get 503 on both transports and a
// session that asks to connect the namespace has its transport closed,
// while connected sockets keep working.
func TestStopAccepting(t *testing.T) {
	h := newHarness(t, Config{})
	ws := dialSocket(t, h)
	h.waitConn(t)
	pending, _, err := websocket.DefaultDialer.Dial(h.wsURL(""), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pending.Close()
	if open := readText(t, pending); !strings.HasPrefix(open, "0{") {
		t.Fatalf("open packet %q", open)
	}

	h.srv.StopAccepting()
	if _, res, err := websocket.DefaultDialer.Dial(h.wsURL(""), nil); err == nil || res == nil || res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("websocket handshake while refusing: %v %v, want 503", res, err)
	}
	res, err := http.Get(h.url("transport=polling"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("polling handshake while refusing: %d %v, want 503 with Retry-After", res.StatusCode, res.Header)
	}

	_ = pending.WriteMessage(websocket.TextMessage, []byte("40"))
	_ = pending.SetReadDeadline(time.Now().Add(5 * time.Second))
	if mt, b, err := pending.ReadMessage(); err == nil {
		t.Fatalf("CONNECT while refusing got %d %q, want the transport closed", mt, b)
	} else if _, ok := err.(*websocket.CloseError); !ok {
		t.Fatalf("CONNECT while refusing: %v, want a websocket close", err)
	}

	_ = ws.WriteMessage(websocket.TextMessage, []byte(`42["echo","still here"]`))
	if got := readText(t, ws); got != `42["echo","still here"]` {
		t.Fatalf("connected socket: %q", got)
	}
}

// Over long-polling, CloseTransport delivers the queued frames, then the
// Engine.IO close packet in a poll of its own (socket.io-client: "transport
// close"), never a socket.io DISCONNECT.
func TestCloseTransportPolling(t *testing.T) {
	h := newHarness(t, Config{})
	sid := pollOpen(t, h)
	post(t, h, sid, "40")
	if st, b := poll(t, h, sid); st != 200 || !strings.HasPrefix(b, `40{"sid"`) {
		t.Fatalf("poll %d %q", st, b)
	}
	c := h.waitConn(t)
	last, err := EncodeEvent("bye")
	if err != nil {
		t.Fatal(err)
	}
	c.CloseTransport(last)
	if st, b := poll(t, h, sid); st != 200 || b != `42["bye"]` {
		t.Fatalf("first poll after CloseTransport: %d %q", st, b)
	}
	if st, b := poll(t, h, sid); st != 200 || b != "1" {
		t.Fatalf("second poll: %d %q, want the engine.io close packet", st, b)
	}
	h.waitGone(t, ReasonServerShutdown)
}
