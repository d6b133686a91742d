package socketio

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chatstate/chatstate/internal/leaktest"
	"github.com/gorilla/websocket"
)

const socketioPkg = "github.com/chatstate/chatstate/socketio"

// perConnGoroutines returns the stacks of this package's goroutines other
// than the engine-wide ones (the poller's wait loop, the timer queue).
func perConnGoroutines() []string {
	var out []string
	for _, g := range leaktest.Running(socketioPkg) {
		if !strings.Contains(g, "(*poller).loop") && !strings.Contains(g, "(*timerQueue).run") {
			out = append(out, g)
		}
	}
	return out
}

// Idle websocket connections have no goroutine of their own (the poller
// reads them when they are readable), and still get and answer everything
// afterwards.
func TestIdleWebsocketsHaveNoGoroutine(t *testing.T) {
	h := newHarness(t, Config{})
	var wss []*websocket.Conn
	for range 10 {
		wss = append(wss, dialSocket(t, h))
		h.waitConn(t)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(perConnGoroutines()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("goroutines of idle connections:\n%s", strings.Join(perConnGoroutines(), "\n\n"))
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
	if len(leaktest.Running(socketioPkg)) == 0 {
		t.Fatal("no poller goroutine: the connections are not watched")
	}
	for i, ws := range wss {
		msg := fmt.Sprintf(`42["echo",%d]`, i)
		_ = ws.WriteMessage(websocket.TextMessage, []byte(msg))
		if got := readText(t, ws); got != msg {
			t.Fatalf("echo %q, want %q", got, msg)
		}
	}
}

// Without a poller (another system, or a connection without a
// descriptor) each connection is read by a goroutine of its own, with the
// same protocol.
func TestWebsocketWithoutPoller(t *testing.T) {
	h := newHarness(t, Config{MaxPayload: 1000})
	h.srv.e.pollMu.Lock()
	h.srv.e.pollFailed = true
	h.srv.e.pollMu.Unlock()
	ws := dialSocket(t, h)
	h.waitConn(t)
	_ = ws.WriteMessage(websocket.TextMessage, []byte(`42["echo","x"]`))
	if got := readText(t, ws); got != `42["echo","x"]` {
		t.Fatalf("echo %q", got)
	}
	if len(perConnGoroutines()) == 0 {
		t.Fatal("no read goroutine: the poller is in use")
	}
	_ = ws.WriteMessage(websocket.TextMessage, []byte(`42["echo","`+strings.Repeat("x", 2000)+`"]`))
	h.waitGone(t, ReasonTransportError)
}

// readClose reads until the server's close frame and returns its code.
func readClose(t *testing.T, ws *websocket.Conn) int {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		if err != nil {
			t.Fatalf("no close frame: %v", err)
		}
	}
}

// A protocol violation closes the connection with 1002, an oversized
// message with 1009, and a client's close frame is answered with its code.
func TestWebsocketCloseCodes(t *testing.T) {
	h := newHarness(t, Config{MaxPayload: 1000})
	key := [4]byte{9, 8, 7, 6}
	for name, tc := range map[string]struct {
		raw    []byte
		code   int
		reason string
	}{
		"unmasked frame": {[]byte{0x81, 2, '4', '2'}, websocket.CloseProtocolError, ReasonTransportClose},
		"reserved bits":  {append([]byte{0xf1}, clientFrame(true, wsOpText, []byte("3"), key)[1:]...), websocket.CloseProtocolError, ReasonTransportClose},
		"too big":        {clientFrame(true, wsOpText, make([]byte, 1001), key)[:8], websocket.CloseMessageTooBig, ReasonTransportError},
		"client close":   {clientFrame(true, wsOpClose, []byte{0x03, 0xe9}, key), websocket.CloseGoingAway, ReasonTransportClose},
	} {
		t.Run(name, func(t *testing.T) {
			ws := dialSocket(t, h)
			h.waitConn(t)
			if _, err := ws.NetConn().Write(tc.raw); err != nil {
				t.Fatal(err)
			}
			if got := readClose(t, ws); got != tc.code {
				t.Fatalf("close code %d, want %d", got, tc.code)
			}
			h.waitGone(t, tc.reason)
		})
	}
}

// The upgrade packet and the first message in one TCP segment: the message
// read together with the upgrade packet is handled, not lost.
func TestPollingUpgradeCoalesced(t *testing.T) {
	h := newHarness(t, Config{})
	sid := pollOpen(t, h)
	post(t, h, sid, "40")
	if st, b := poll(t, h, sid); st != 200 || !strings.HasPrefix(b, `40{"sid"`) {
		t.Fatalf("poll %d %q", st, b)
	}
	c := h.waitConn(t)
	ws, _, err := websocket.DefaultDialer.Dial(h.wsURL("&sid="+sid), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.WriteMessage(websocket.TextMessage, []byte("2probe"))
	if got := readText(t, ws); got != "3probe" {
		t.Fatalf("probe reply %q", got)
	}
	key := [4]byte{1, 2, 3, 4}
	raw := append(clientFrame(true, wsOpText, []byte("5"), key), clientFrame(true, wsOpText, []byte(`42["echo","up"]`), key)...)
	raw = append(raw, clientFrame(false, wsOpText, []byte(`42["echo",`), key)[:5]...) // and part of a third
	if _, err := ws.NetConn().Write(raw); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, ws); got != `42["echo","up"]` {
		t.Fatalf("after upgrade %q", got)
	}
	rest := clientFrame(false, wsOpText, []byte(`42["echo",`), key)[5:]
	rest = append(rest, clientFrame(true, wsOpCont, []byte(`"more"]`), key)...)
	if _, err := ws.NetConn().Write(rest); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, ws); got != `42["echo","more"]` {
		t.Fatalf("fragmented message after upgrade %q", got)
	}
	if c.Transport() != "websocket" {
		t.Fatal("transport not switched")
	}
}

// Heartbeats go on across many intervals for a client that answers, with
// one timer queue for all sessions; and a client that stops answering is closed.
func TestHeartbeatKeepsAnsweringClients(t *testing.T) {
	h := newHarness(t, Config{PingInterval: 20 * time.Millisecond, PingTimeout: 40 * time.Millisecond})
	ws := dialSocket(t, h)
	h.waitConn(t)
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for pings := 0; pings < 10; {
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("after %d pings: %v", pings, err)
		}
		if string(b) == "2" {
			pings++
			_ = ws.WriteMessage(websocket.TextMessage, []byte("3"))
		}
	}
	select {
	case r := <-h.gone:
		t.Fatalf("answering client disconnected: %s", r)
	default:
	}
	h.waitGone(t, ReasonPingTimeout) // it stops answering now
}

// ExpireAt runs its function at the deadline, not before; a later call
// replaces an earlier one; a socket disconnected before its deadline, or
// already gone when asked, never runs it.
func TestConnExpireAt(t *testing.T) {
	h := newHarness(t, Config{})
	dialSocket(t, h)
	c := h.waitConn(t)
	dialSocket(t, h)
	closed := h.waitConn(t)
	ws3 := dialSocket(t, h)
	gone := h.waitConn(t)
	_ = ws3.WriteMessage(websocket.TextMessage, []byte("41"))
	h.waitGone(t, ReasonClientDisconnect)

	type fired struct {
		name string
		at   time.Time
	}
	ch := make(chan fired, 4)
	soon := time.Now().Add(30 * time.Millisecond)
	gone.ExpireAt(soon, func() { ch <- fired{"gone", time.Now()} })
	closed.ExpireAt(soon, func() { ch <- fired{"closed", time.Now()} })
	closed.Disconnect() // the session is closed when it returns
	c.ExpireAt(time.Now().Add(time.Hour), func() { ch <- fired{"replaced", time.Now()} })
	at := time.Now().Add(150 * time.Millisecond) // after the others' deadline
	c.ExpireAt(at, func() { ch <- fired{"c", time.Now()} })
	select {
	case f := <-ch:
		if f.name != "c" {
			t.Fatalf("%s fired", f.name)
		}
		if f.at.Before(at) {
			t.Fatalf("fired %v early", at.Sub(f.at))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ExpireAt did not fire")
	}
	select {
	case f := <-ch:
		t.Fatalf("%s fired too", f.name)
	default:
	}
}
