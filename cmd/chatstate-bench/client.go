package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// window is the measurement interval (unix nanos); deliveries received
// inside it count for deliveries/s, latency and CPU per delivery.
type window struct {
	start, end atomic.Int64
}

func (w *window) contains(t int64) bool {
	s := w.start.Load()
	return s != 0 && t >= s && t < w.end.Load()
}

// shared is what every client's read loop reports into.
type shared struct {
	track       *tracker
	win         window
	delivered   atomic.Int64 // all bench deliveries, any time
	inWindow    atomic.Int64 // deliveries received inside the window
	disconnects atomic.Int64 // sockets that closed before we closed them
	closing     atomic.Bool
	id          string // run id, the prefix of clientMessageIds
}

// client is one Socket.IO v5 socket over Engine.IO v4 websocket, one user
// with one device. Only the bits the bench needs are implemented: connect,
// ping/pong, emit with ack, and the message:new event.
type client struct {
	idx    int
	user   string
	conv   string
	want   int // recipients of this client's messages
	conn   *websocket.Conn
	wmu    sync.Mutex
	sh     *shared
	lat    []time.Duration // delivery latencies, owned by the read loop until done closes
	ackLat []time.Duration // send-to-ack latencies, same ownership
	done   chan struct{}
	maxLt  int
	closed bool // set by closeAll, which runs from one goroutine
}

func signHS256(secret, sub string, now time.Time) string {
	enc := base64.RawURLEncoding
	header := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims, _ := json.Marshal(map[string]any{"sub": sub, "iat": now.Unix(), "exp": now.Add(24 * time.Hour).Unix()})
	signing := header + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

// wsURL turns a node's base URL into its Socket.IO websocket endpoint.
func wsURL(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("node %q: scheme must be http or ws", base)
	}
	u.Path = "/socket.io/"
	u.RawQuery = "EIO=4&transport=websocket"
	return u.String(), nil
}

// newDialer returns a websocket dialer whose connections leave from src (nil
// means the kernel's choice), so more than one source IP can share the
// ephemeral port range when one is not enough.
func newDialer(src net.IP) *websocket.Dialer {
	nd := &net.Dialer{Timeout: 10 * time.Second}
	if src != nil {
		nd.LocalAddr = &net.TCPAddr{IP: src}
	}
	return &websocket.Dialer{
		NetDialContext:   nd.DialContext,
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   2048,
		WriteBufferSize:  2048,
		WriteBufferPool:  &sync.Pool{},
	}
}

// connect opens the websocket and completes the Socket.IO handshake.
func (c *client) connect(ctx context.Context, d *websocket.Dialer, endpoint, token string) error {
	conn, resp, err := d.DialContext(ctx, endpoint, nil)
	if err != nil {
		if resp != nil {
			return fmt.Errorf("dial: %w (HTTP %d)", err, resp.StatusCode)
		}
		return fmt.Errorf("dial: %w", err)
	}
	conn.SetReadLimit(1 << 20)
	fail := func(err error) error { conn.Close(); return err }
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, open, err := conn.ReadMessage()
	if err != nil || len(open) == 0 || open[0] != '0' {
		return fail(fmt.Errorf("engine.io open: %q %v", truncate(open), err))
	}
	auth, _ := json.Marshal(map[string]string{"token": token, "deviceId": "d"})
	if err := conn.WriteMessage(websocket.TextMessage, append([]byte("40"), auth...)); err != nil {
		return fail(fmt.Errorf("socket.io connect: %w", err))
	}
	// Bounded: the deadline above ends this loop if the server says nothing useful.
	for i := 0; i < 16; i++ {
		_, p, err := conn.ReadMessage()
		if err != nil {
			return fail(fmt.Errorf("socket.io connect: %w", err))
		}
		switch {
		case bytes.HasPrefix(p, []byte("40")):
			_ = conn.SetReadDeadline(time.Time{})
			c.conn = conn
			c.done = make(chan struct{})
			go c.readLoop()
			return nil
		case bytes.HasPrefix(p, []byte("44")):
			return fail(fmt.Errorf("connect_error: %s", truncate(p)))
		case bytes.Equal(p, []byte("2")):
			_ = conn.WriteMessage(websocket.TextMessage, []byte("3"))
		}
	}
	return fail(errors.New("socket.io connect: no answer"))
}

func (c *client) readLoop() {
	defer close(c.done)
	for {
		_, p, err := c.conn.ReadMessage()
		if err != nil {
			if !c.sh.closing.Load() {
				c.sh.disconnects.Add(1)
			}
			return
		}
		if len(p) == 0 {
			continue
		}
		switch p[0] {
		case '2': // engine.io ping: answer or the server drops us
			c.write([]byte("3"))
		case '4':
			if len(p) > 1 && p[1] == '2' {
				c.onEvent(p)
			} else if len(p) > 1 && p[1] == '3' {
				c.onAck(p[2:])
			}
		}
	}
}

func (c *client) onEvent(p []byte) {
	if !bytes.HasPrefix(p, []byte(`42["message:new"`)) {
		return
	}
	now := time.Now().UnixNano()
	n, sent, ok := parseDelivery(p)
	if !ok || !c.sh.track.deliver(n) {
		return
	}
	c.sh.delivered.Add(1)
	if c.sh.win.contains(now) {
		c.sh.inWindow.Add(1)
		if len(c.lat) < c.maxLt {
			c.lat = append(c.lat, time.Duration(now-sent))
		}
	}
}

// onAck handles "<id>[{...,"ok":bool}]"; the ack id is the message number.
func (c *client) onAck(p []byte) {
	id, rest, ok := leadingInt(p)
	if !ok {
		return
	}
	var reply []struct {
		OK bool `json:"ok"`
	}
	if err := json.Unmarshal(rest, &reply); err != nil || len(reply) != 1 {
		c.sh.track.ack(id, false)
		return
	}
	c.sh.track.ack(id, reply[0].OK)
	now := time.Now().UnixNano()
	if sent := c.sh.track.sentAt(id); sent > 0 && c.sh.win.contains(now) && len(c.ackLat) < c.maxLt {
		c.ackLat = append(c.ackLat, time.Duration(now-sent))
	}
}

func (c *client) write(p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.conn.WriteMessage(websocket.TextMessage, p)
}

// send emits message:send with ack id n.
func (c *client) send(n int64, runID string) error {
	now := time.Now()
	c.sh.track.markSent(n, now)
	content := formatContent(n, now)
	b := make([]byte, 0, 160)
	b = append(b, "42"...)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, `["message:send",{"conversationId":"`...)
	b = append(b, c.conv...)
	b = append(b, `","clientMessageId":"`...)
	b = append(b, runID...)
	b = append(b, '-')
	b = strconv.AppendInt(b, n, 10)
	b = append(b, `","content":"`...)
	b = append(b, content...)
	b = append(b, `"}]`...)
	return c.write(b)
}

// close sends the engine.io close packet and waits (bounded) for the read loop.
func (c *client) close() {
	if c.conn == nil {
		return
	}
	_ = c.write([]byte("1"))
	_ = c.conn.Close()
	select {
	case <-c.done:
	case <-time.After(2 * time.Second):
	}
}

func truncate(p []byte) string {
	if len(p) > 120 {
		return string(p[:120]) + "..."
	}
	return string(p)
}
