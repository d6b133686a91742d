package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// testClient is a minimal Socket.IO v5 client over a websocket, enough to
// drive the gateway from Go tests (the official client is exercised by the
// end-to-end tests in cmd/chatstate).
type testClient struct {
	t  *testing.T
	ws *websocket.Conn

	wmu sync.Mutex

	mu     sync.Mutex
	events []event
	notify chan struct{}
	acks   map[int]chan json.RawMessage
	next   int
	done   chan struct{} // closed when the connection ends
	// disconnects counts socket.io DISCONNECT packets from the server.
	disconnects int
}

type event struct {
	Name string
	Arg  json.RawMessage
}

// dialClient connects and completes the Socket.IO handshake with auth.
func dialClient(t *testing.T, baseURL string, auth map[string]string) (*testClient, error) {
	t.Helper()
	return dialClientHeader(t, baseURL, auth, nil)
}

// dialClientHeader is dialClient with extra handshake request headers.
func dialClientHeader(t *testing.T, baseURL string, auth map[string]string, header http.Header) (*testClient, error) {
	t.Helper()
	url := "ws" + strings.TrimPrefix(baseURL, "http") + "/socket.io/?EIO=4&transport=websocket"
	ws, _, err := websocket.DefaultDialer.Dial(url, header)
	if err != nil {
		return nil, err
	}
	c := &testClient{t: t, ws: ws, notify: make(chan struct{}, 1), acks: map[int]chan json.RawMessage{}, done: make(chan struct{})}
	t.Cleanup(func() { ws.Close() })
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, msg, err := ws.ReadMessage(); err != nil || msg[0] != '0' {
		return nil, fmt.Errorf("open packet: %q %v", msg, err)
	}
	a, _ := json.Marshal(auth)
	if err := ws.WriteMessage(websocket.TextMessage, append([]byte("40"), a...)); err != nil {
		return nil, err
	}
	_, msg, err := ws.ReadMessage()
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(msg, []byte("40")) {
		return nil, fmt.Errorf("connect refused: %s", msg)
	}
	ws.SetReadDeadline(time.Time{})
	go c.read()
	return c, nil
}

func (c *testClient) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

func (c *testClient) read() {
	defer close(c.done)
	for {
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		switch {
		case string(msg) == "2":
			c.write([]byte("3"))
		case bytes.HasPrefix(msg, []byte("42")):
			var arr []json.RawMessage
			if json.Unmarshal(msg[2:], &arr) != nil || len(arr) == 0 {
				continue
			}
			var name string
			json.Unmarshal(arr[0], &name)
			ev := event{Name: name}
			if len(arr) > 1 {
				ev.Arg = arr[1]
			}
			c.mu.Lock()
			c.events = append(c.events, ev)
			c.mu.Unlock()
			select {
			case c.notify <- struct{}{}:
			default:
			}
		case string(msg) == "41":
			// The server's DISCONNECT, counted and recorded as a pseudo-event.
			c.mu.Lock()
			c.disconnects++
			c.events = append(c.events, event{Name: serverDisconnect})
			c.mu.Unlock()
			select {
			case c.notify <- struct{}{}:
			default:
			}
		case bytes.HasPrefix(msg, []byte("43")):
			i := bytes.IndexByte(msg, '[')
			id, _ := strconv.Atoi(string(msg[2:i]))
			var arr []json.RawMessage
			json.Unmarshal(msg[i:], &arr)
			c.mu.Lock()
			ch := c.acks[id]
			c.mu.Unlock()
			if ch != nil && len(arr) > 0 {
				ch <- arr[0]
			}
		}
	}
}

// emitAsync sends an event asking for an ack and returns the ack's channel.
func (c *testClient) emitAsync(name string, payload any) <-chan json.RawMessage {
	c.t.Helper()
	c.mu.Lock()
	id := c.next
	c.next++
	ch := make(chan json.RawMessage, 1)
	c.acks[id] = ch
	c.mu.Unlock()
	b, _ := json.Marshal([]any{name, payload})
	if err := c.write(append([]byte("42"+strconv.Itoa(id)), b...)); err != nil {
		c.t.Fatal(err)
	}
	return ch
}

// emit sends an event with an ack and returns the ack's first argument.
func (c *testClient) emit(name string, payload any) map[string]any {
	c.t.Helper()
	ch := c.emitAsync(name, payload)
	select {
	case raw := <-ch:
		var m map[string]any
		json.Unmarshal(raw, &m)
		return m
	case <-time.After(5 * time.Second):
		c.t.Fatalf("no ack for %s", name)
		return nil
	}
}

// serverDisconnect is the pseudo-event name of the server's DISCONNECT
// packet, which socket.io-client reports as "io server disconnect".
const serverDisconnect = "(io server disconnect)"

// waitEvent returns the first event named name whose argument satisfies
// pred, waiting up to 5 s.
func (c *testClient) waitEvent(name string, pred func(map[string]any) bool) map[string]any {
	c.t.Helper()
	return c.waitEventWithin(name, pred, 5*time.Second)
}

// waitEventWithin is waitEvent with its own deadline.
func (c *testClient) waitEventWithin(name string, pred func(map[string]any) bool, timeout time.Duration) map[string]any {
	c.t.Helper()
	deadline := time.After(timeout)
	for {
		for _, ev := range c.received(name) {
			if pred == nil || pred(ev) {
				return ev
			}
		}
		select {
		case <-c.notify:
		case <-deadline:
			c.t.Fatalf("no %s event within %s", name, timeout)
		}
	}
}

func (c *testClient) received(name string) []map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []map[string]any
	for _, ev := range c.events {
		if ev.Name == name {
			var m map[string]any
			json.Unmarshal(ev.Arg, &m)
			out = append(out, m)
		}
	}
	return out
}

// until waits, woken by each event c receives and at least every 100 ms,
// until cond holds; after 10 s it fails with what().
func (c *testClient) until(t *testing.T, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(what())
		}
		select {
		case <-c.notify:
		case <-time.After(100 * time.Millisecond):
		}
	}
}
