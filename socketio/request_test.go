package socketio

import (
	"encoding/json"
	"net"
	"net/http"
	"testing"

	"github.com/gorilla/websocket"
)

// Conn.Request gives the handshake request back from the session's compact
// copy: method, URL with its query, the client's headers (not those of the
// websocket handshake), remote address; each call a fresh request.
func TestConnRequest(t *testing.T) {
	h := newHarness(t, Config{})
	got := make(chan *http.Request, 2)
	h.srv.OnConnect(func(c *Conn, _ json.RawMessage) error {
		r := c.Request()
		if r2 := c.Request(); r2 == r || r2.Header.Get("User-Agent") != r.Header.Get("User-Agent") {
			t.Error("a second Request is not a fresh copy of the same request")
		}
		got <- r
		return nil
	})
	hdr := http.Header{"User-Agent": {"test-agent/1"}, "X-Forwarded-For": {"10.0.0.1", "10.0.0.2"}, "Cookie": {"a=b"}}
	ws, _, err := websocket.DefaultDialer.Dial(h.wsURL("&token=abc"), hdr)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	readText(t, ws)
	_ = ws.WriteMessage(websocket.TextMessage, []byte("40"))
	r := <-got
	if r.Method != http.MethodGet || r.URL.Path != "/socket.io/" || r.URL.Query().Get("token") != "abc" || r.URL.Query().Get("EIO") != "4" {
		t.Fatalf("method %q URL %v", r.Method, r.URL)
	}
	if r.Header.Get("User-Agent") != "test-agent/1" || len(r.Header.Values("X-Forwarded-For")) != 2 || r.Header.Get("Cookie") != "a=b" {
		t.Fatalf("headers %v", r.Header)
	}
	for _, k := range []string{"Connection", "Upgrade", "Sec-Websocket-Key", "Sec-Websocket-Version"} {
		if r.Header.Get(k) != "" {
			t.Fatalf("handshake header %s kept: %v", k, r.Header)
		}
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err != nil || net.ParseIP(host) == nil {
		t.Fatalf("remote address %q", r.RemoteAddr)
	}
	if r.Body != http.NoBody || r.ProtoMajor != 1 || r.Context() == nil {
		t.Fatalf("body %v proto %d", r.Body, r.ProtoMajor)
	}
}
