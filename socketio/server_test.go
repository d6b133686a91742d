package socketio

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// harness is a Server on httptest with its disconnects on a channel.
type harness struct {
	srv   *Server
	hs    *httptest.Server
	conns chan *Conn
	gone  chan string
	mu    sync.Mutex
	count map[*Conn]int
}

func newHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{srv: NewServer(cfg), conns: make(chan *Conn, 64), gone: make(chan string, 64), count: map[*Conn]int{}}
	h.srv.OnConnect(func(c *Conn, auth json.RawMessage) error {
		h.conns <- c
		return nil
	})
	h.srv.OnEvent(func(c *Conn, ev *Event) {
		if ev.Name == "echo" {
			args := make([]any, len(ev.Args))
			for i, a := range ev.Args {
				args[i] = a
			}
			_ = c.Emit("echo", args...)
		}
	})
	h.srv.OnDisconnect(func(c *Conn, reason string) {
		h.mu.Lock()
		h.count[c]++
		h.mu.Unlock()
		h.gone <- reason
	})
	h.hs = httptest.NewServer(h.srv)
	t.Cleanup(func() { h.hs.Close(); h.srv.Close() })
	return h
}

func (h *harness) url(q string) string { return h.hs.URL + "/socket.io/?EIO=4&" + q }
func (h *harness) wsURL(q string) string {
	return "ws" + strings.TrimPrefix(h.hs.URL, "http") + "/socket.io/?EIO=4&transport=websocket" + q
}

func (h *harness) waitGone(t *testing.T, want string) {
	t.Helper()
	select {
	case r := <-h.gone:
		if r != want {
			t.Fatalf("disconnect reason %q, want %q", r, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no disconnect (want %q)", want)
	}
}

func (h *harness) waitConn(t *testing.T) *Conn {
	t.Helper()
	select {
	case c := <-h.conns:
		return c
	case <-time.After(5 * time.Second):
		t.Fatal("no connection")
	}
	return nil
}

func readText(t *testing.T, ws *websocket.Conn) string {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		mt, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if mt == websocket.TextMessage && string(b) == "2" {
			_ = ws.WriteMessage(websocket.TextMessage, []byte("3"))
			continue
		}
		return string(b)
	}
}

// dialSocket opens a websocket-first session and connects to "/".
func dialSocket(t *testing.T, h *harness) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(h.wsURL(""), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	if open := readText(t, ws); !strings.HasPrefix(open, `0{"sid":"`) || !strings.Contains(open, `"upgrades":[]`) {
		t.Fatalf("open packet %q", open)
	}
	_ = ws.WriteMessage(websocket.TextMessage, []byte("40"))
	if c := readText(t, ws); !strings.HasPrefix(c, `40{"sid":"`) {
		t.Fatalf("connect reply %q", c)
	}
	return ws
}

func TestWebsocketEventAndClientDisconnect(t *testing.T) {
	h := newHarness(t, Config{})
	ws := dialSocket(t, h)
	c := h.waitConn(t)
	if c.Transport() != "websocket" || len(c.ID()) != 20 || h.srv.Count() != 1 {
		t.Fatalf("conn %q %q count %d", c.Transport(), c.ID(), h.srv.Count())
	}
	_ = ws.WriteMessage(websocket.TextMessage, []byte(`42["echo",1,{"a":"b"}]`))
	if got := readText(t, ws); got != `42["echo",1,{"a":"b"}]` {
		t.Fatalf("echo %q", got)
	}
	_ = ws.WriteMessage(websocket.TextMessage, []byte("41"))
	h.waitGone(t, ReasonClientDisconnect)
	if err := c.Emit("late"); !errors.Is(err, ErrClosed) {
		t.Fatalf("emit after disconnect: %v", err)
	}
}

func TestHTTPErrors(t *testing.T) {
	h := newHarness(t, Config{})
	cases := []struct {
		method, q string
		status    int
		code      int
	}{
		{"GET", "EIO=3&transport=polling", 400, errCodeBadVersion},
		{"GET", "EIO=4&transport=foo", 400, errCodeUnknownTransport},
		{"POST", "EIO=4&transport=polling", 400, errCodeBadMethod},
		{"GET", "EIO=4&transport=polling&sid=nope", 400, errCodeUnknownSID},
		{"GET", "EIO=4&transport=websocket", 400, errCodeBadRequest},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, h.hs.URL+"/socket.io/?"+c.q, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Code int }
		_ = json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if res.StatusCode != c.status || body.Code != c.code {
			t.Errorf("%s %s: %d code %d, want %d code %d", c.method, c.q, res.StatusCode, body.Code, c.status, c.code)
		}
	}
}

func pollOpen(t *testing.T, h *harness) string {
	t.Helper()
	res, err := http.Get(h.url("transport=polling"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var hs struct{ SID string }
	if res.StatusCode != 200 || len(b) == 0 || b[0] != '0' || json.Unmarshal(b[1:], &hs) != nil {
		t.Fatalf("handshake %d %q", res.StatusCode, b)
	}
	return hs.SID
}

func post(t *testing.T, h *harness, sid, body string) int {
	t.Helper()
	res, err := http.Post(h.url("transport=polling&sid="+sid), "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

func poll(t *testing.T, h *harness, sid string) (int, string) {
	t.Helper()
	res, err := http.Get(h.url("transport=polling&sid=" + sid))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res.StatusCode, string(b)
}

func TestPollingUpgrade(t *testing.T) {
	h := newHarness(t, Config{})
	sid := pollOpen(t, h)
	if st := post(t, h, sid, "40"); st != 200 {
		t.Fatalf("post %d", st)
	}
	if st, b := poll(t, h, sid); st != 200 || !strings.HasPrefix(b, `40{"sid"`) {
		t.Fatalf("poll %d %q", st, b)
	}
	c := h.waitConn(t)
	if c.Transport() != "polling" {
		t.Fatal(c.Transport())
	}
	// A poll pending during the upgrade ends with noop.
	pending := make(chan string, 1)
	go func() { _, b := poll(t, h, sid); pending <- b }()
	ws, _, err := websocket.DefaultDialer.Dial(h.wsURL("&sid="+sid), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.WriteMessage(websocket.TextMessage, []byte("2probe"))
	if got := readText(t, ws); got != "3probe" {
		t.Fatalf("probe reply %q", got)
	}
	if b := <-pending; b != "6" {
		t.Fatalf("pending poll got %q", b)
	}
	_ = ws.WriteMessage(websocket.TextMessage, []byte("5"))
	_ = ws.WriteMessage(websocket.TextMessage, []byte(`42["echo","up"]`))
	if got := readText(t, ws); got != `42["echo","up"]` {
		t.Fatalf("after upgrade %q", got)
	}
	if c.Transport() != "websocket" {
		t.Fatal("transport not switched")
	}
	if st, _ := poll(t, h, sid); st != 400 {
		t.Fatalf("poll after upgrade: %d", st)
	}
}

func TestPingTimeout(t *testing.T) {
	h := newHarness(t, Config{PingInterval: 50 * time.Millisecond, PingTimeout: 50 * time.Millisecond})
	ws, _, err := websocket.DefaultDialer.Dial(h.wsURL(""), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_, _, _ = ws.ReadMessage()
	_ = ws.WriteMessage(websocket.TextMessage, []byte("40"))
	h.waitConn(t)
	// Never answer pings.
	h.waitGone(t, ReasonPingTimeout)
	if h.srv.Count() != 0 {
		t.Fatal("count not decremented")
	}
}

func TestConnectTimeout(t *testing.T) {
	h := newHarness(t, Config{ConnectTimeout: 50 * time.Millisecond})
	ws, _, err := websocket.DefaultDialer.Dial(h.wsURL(""), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			break // closed by the server without a CONNECT
		}
	}
}

func TestLimits(t *testing.T) {
	h := newHarness(t, Config{MaxPayload: 1000, MaxAttachments: 2})
	bad := map[string]string{
		"oversized ws message": `42["echo","` + strings.Repeat("x", 2000) + `"]`,
		"too many attachments": `453-["echo",{"_placeholder":true,"num":0}]`,
		"unknown packet type":  "4abc",
		"payload not an array": "42{}",
		"bad ack id":           `42abc["echo"]`,
		"deep nesting":         "42" + `["echo",` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "]",
		"engine open packet":   "0",
	}
	for name, msg := range bad {
		t.Run(name, func(t *testing.T) {
			ws := dialSocket(t, h)
			h.waitConn(t)
			_ = ws.WriteMessage(websocket.TextMessage, []byte(msg))
			want := ReasonParseError
			if name == "oversized ws message" {
				want = ReasonTransportError
			}
			h.waitGone(t, want)
		})
	}
	t.Run("oversized polling body", func(t *testing.T) {
		sid := pollOpen(t, h)
		if st := post(t, h, sid, "4"+strings.Repeat("x", 2000)); st != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d", st)
		}
		if st, _ := poll(t, h, sid); st != 400 {
			t.Fatalf("session survived: %d", st)
		}
	})
	t.Run("too many packets", func(t *testing.T) {
		sid := pollOpen(t, h)
		if st := post(t, h, sid, strings.Repeat("3\x1e", 300)+"3"); st != 400 {
			t.Fatalf("status %d", st)
		}
	})
}

func TestSendQueueOverflow(t *testing.T) {
	h := newHarness(t, Config{SendQueue: 4})
	sid := pollOpen(t, h)
	post(t, h, sid, "40")
	c := h.waitConn(t)
	// CONNECT reply is queued; nobody polls, so the queue fills up.
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		err = c.Emit("x", i)
	}
	if !errors.Is(err, ErrQueueFull) {
		t.Fatalf("err %v", err)
	}
	h.waitGone(t, ReasonQueueOverflow)
	if err := c.Emit("x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("after overflow: %v", err)
	}
}

func TestCORS(t *testing.T) {
	h := newHarness(t, Config{AllowedOrigins: []string{"https://app.example"}})
	req, _ := http.NewRequest("OPTIONS", h.url("transport=polling"), nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Headers", "content-type")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 204 || res.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		res.Header.Get("Access-Control-Allow-Headers") != "content-type" {
		t.Fatalf("preflight %d %v", res.StatusCode, res.Header)
	}
	req, _ = http.NewRequest("GET", h.url("transport=polling"), nil)
	req.Header.Set("Origin", "https://evil.example")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 403 {
		t.Fatalf("foreign origin polling: %d", res.StatusCode)
	}
	hdr := http.Header{"Origin": {"https://evil.example"}}
	if _, _, err := websocket.DefaultDialer.Dial(h.wsURL(""), hdr); err == nil {
		t.Fatal("foreign origin websocket accepted")
	}
	hdr = http.Header{"Origin": {"https://app.example"}}
	ws, _, err := websocket.DefaultDialer.Dial(h.wsURL(""), hdr)
	if err != nil {
		t.Fatalf("allowed origin: %v", err)
	}
	ws.Close()
}

func TestDisconnectExactlyOnce(t *testing.T) {
	h := newHarness(t, Config{})
	const n = 20
	var conns []*Conn
	var wss []*websocket.Conn
	for i := 0; i < n; i++ {
		wss = append(wss, dialSocket(t, h))
		conns = append(conns, h.waitConn(t))
	}
	// Race a server disconnect, a client disconnect and a transport close.
	for i := range conns {
		go conns[i].Disconnect()
		go wss[i].WriteMessage(websocket.TextMessage, []byte("41"))
		go wss[i].Close()
	}
	for i := 0; i < n; i++ {
		select {
		case <-h.gone:
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d disconnects", i)
		}
	}
	h.srv.Close()
	h.mu.Lock()
	defer h.mu.Unlock()
	for c, k := range h.count {
		if k != 1 {
			t.Fatalf("conn %s: %d OnDisconnect", c.ID(), k)
		}
	}
	if h.srv.Count() != 0 {
		t.Fatalf("count %d", h.srv.Count())
	}
}

func TestServerClose(t *testing.T) {
	h := newHarness(t, Config{})
	ws := dialSocket(t, h)
	h.waitConn(t)
	sid := pollOpen(t, h)
	post(t, h, sid, "40")
	h.waitConn(t)
	h.srv.Close()
	for i := 0; i < 2; i++ {
		h.waitGone(t, ReasonServerShutdown)
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			break
		}
	}
	if res, err := http.Get(h.url("transport=polling")); err == nil {
		res.Body.Close()
		if res.StatusCode == 200 {
			t.Fatal("new session after Close")
		}
	}
}
