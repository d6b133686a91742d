package socketio

import (
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"time"
)

const (
	stateConnecting uint8 = iota
	stateConnected
	stateClosed
)

// Conn is one socket.io socket on "/". Its methods are safe for concurrent
// use.
type Conn struct {
	s   *session
	srv *Server
	id  string

	// Under s.mu.
	state  uint8
	pre    []*Frame // frames emitted from OnConnect, sent after CONNECT
	ackSeq int64
	acks   map[int64]chan []json.RawMessage
	data   any
	expAt  int64 // ExpireAt's deadline in the timer queue's time, 0 none
	expFn  func()
}

// ID is the socket.io socket id (random, URL-safe, not the engine sid).
func (c *Conn) ID() string { return c.id }

// Request returns the handshake request (method, URL, headers, remote
// address, TLS state) without its body, and without the headers of the
// websocket handshake itself (Connection, Upgrade, Sec-WebSocket-Key,
// -Version and -Extensions). The session keeps only a compact copy, so each
// call builds a new *http.Request: call it once and keep what you need.
func (c *Conn) Request() *http.Request { return c.s.hs.request() }

// Transport is "polling" or "websocket" (the current one, after upgrades).
func (c *Conn) Transport() string {
	c.s.mu.Lock()
	t := c.s.transport
	c.s.mu.Unlock()
	if t == transportWebsocket {
		return "websocket"
	}
	return "polling"
}

// SetData stores application state for the connection.
func (c *Conn) SetData(v any) {
	c.s.mu.Lock()
	c.data = v
	c.s.mu.Unlock()
}

// Data returns what SetData stored.
func (c *Conn) Data() any {
	c.s.mu.Lock()
	v := c.data
	c.s.mu.Unlock()
	return v
}

// ExpireAt runs fn, in a goroutine of its own, at t unless the socket has
// disconnected by then. A later call replaces the earlier one; a zero t
// cancels it. It needs no timer of its own: the session's entry in the
// engine's timer queue (heartbeat, connect timeout) serves it.
func (c *Conn) ExpireAt(t time.Time, fn func()) {
	s := c.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.IsZero() || fn == nil || c.state == stateClosed {
		c.expAt, c.expFn = 0, nil
		return
	}
	c.expAt = max(s.e.timers.now()+int64(time.Until(t)), 1)
	c.expFn = fn
	s.e.timers.schedule(&s.tm, c.expAt)
}

// Send queues a pre-encoded frame (see EncodeEvent). It returns ErrClosed
// once the socket is disconnected, and ErrQueueFull when the send queue
// overflowed, in which case the connection has been closed.
func (c *Conn) Send(f *Frame) error {
	if f == nil {
		return errEmptyEvent
	}
	s := c.s
	s.mu.Lock()
	switch c.state {
	case stateClosed:
		s.mu.Unlock()
		return ErrClosed
	case stateConnecting:
		if len(c.pre) >= s.e.cfg.SendQueue {
			s.mu.Unlock()
			return ErrQueueFull
		}
		c.pre = append(c.pre, f)
		s.mu.Unlock()
		return nil
	}
	err := s.sendLocked(f)
	s.mu.Unlock()
	if err == ErrQueueFull {
		s.close(ReasonQueueOverflow, closeHard)
	}
	return err
}

// Emit sends an event to this socket. Top-level []byte arguments become
// binary attachments; json.RawMessage arguments are sent verbatim.
func (c *Conn) Emit(event string, args ...any) error {
	if event == "" {
		return errEmptyEvent
	}
	text, bins, err := encodeSIO(event, -1, args)
	if err != nil {
		return err
	}
	return c.Send(&Frame{text: text, bins: bins})
}

// EmitWithAck sends an event asking for an ack and waits for the client's
// ack arguments, ctx's end, AckTimeout (ErrAckTimeout) or the disconnect
// (ErrClosed). Binary attachments of a BINARY_ACK are not returned (their
// placeholders are). Never await it in a handler of the same connection.
func (c *Conn) EmitWithAck(ctx context.Context, event string, args ...any) ([]json.RawMessage, error) {
	if event == "" {
		return nil, errEmptyEvent
	}
	s := c.s
	s.mu.Lock()
	if c.state != stateConnected {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	c.ackSeq++
	id := c.ackSeq
	ch := make(chan []json.RawMessage, 1)
	if c.acks == nil {
		c.acks = make(map[int64]chan []json.RawMessage)
	}
	c.acks[id] = ch
	s.mu.Unlock()

	text, bins, err := encodeSIO(event, id, args)
	if err == nil {
		err = c.Send(&Frame{text: text, bins: bins})
	}
	if err != nil {
		c.dropAck(id)
		return nil, err
	}
	t := time.NewTimer(c.srv.e.cfg.AckTimeout)
	defer t.Stop()
	select {
	case res, ok := <-ch:
		if !ok {
			return nil, ErrClosed
		}
		return res, nil
	case <-ctx.Done():
		c.dropAck(id)
		return nil, ctx.Err()
	case <-t.C:
		c.dropAck(id)
		return nil, ErrAckTimeout
	}
}

func (c *Conn) dropAck(id int64) {
	c.s.mu.Lock()
	delete(c.acks, id)
	c.s.mu.Unlock()
}

// resolveAck hands a client ACK to its waiter; unknown ids (late, or never
// asked) are ignored.
func (c *Conn) resolveAck(id int64, args []json.RawMessage) {
	c.s.mu.Lock()
	ch := c.acks[id]
	delete(c.acks, id)
	c.s.mu.Unlock()
	if ch != nil {
		ch <- args
	}
}

// Disconnect disconnects the socket from the server side: the client gets
// DISCONNECT (socket.io-client reports "io server disconnect" and does not
// reconnect) and the transport is closed after the queued frames.
func (c *Conn) Disconnect() {
	s := c.s
	s.mu.Lock()
	if c.state != stateConnected {
		s.mu.Unlock()
		return
	}
	_ = s.sendLocked(frameSIODisconnect) // on a full queue the close still happens
	s.mu.Unlock()
	s.close(ReasonServerDisconnect, closeServer)
}

// CloseTransport ends the socket from the server side without a socket.io
// DISCONNECT, so socket.io-client reports "transport close" and reconnects
// by itself (after Disconnect it would not). It first waits for the event
// handler running on this socket, if any, to return, so that handler's ack
// is written; then the queued frames and last are flushed and the
// transport is closed. Events not yet handled when it is called are
// dropped (unacked, so the client resends them after its reconnect).
// OnDisconnect runs with ReasonServerShutdown. It must not be called from
// a handler of the same socket (it would wait for itself).
func (c *Conn) CloseTransport(last ...*Frame) {
	s := c.s
	s.mu.Lock()
	s.closing = true // the read loop starts no handler meanwhile
	s.mu.Unlock()
	s.readMu.Lock()
	defer s.readMu.Unlock()
	s.mu.Lock()
	if c.state != stateConnected {
		s.mu.Unlock()
		return
	}
	for _, f := range last {
		if f != nil && s.sendLocked(f) != nil {
			break // on a full queue the close still happens
		}
	}
	s.mu.Unlock()
	s.close(ReasonServerShutdown, closeServer)
}

// Event is one EVENT or BINARY_EVENT from a client.
type Event struct {
	Name string
	// Args are the arguments after the name, as raw JSON; binary
	// placeholders {"_placeholder":true,"num":n} are kept as sent.
	Args []json.RawMessage
	// Attachments are the binary attachments, indexed by placeholder num.
	Attachments [][]byte

	conn  *Conn
	id    int64
	acked atomic.Bool
}

// HasAck reports whether the client asked for an ack.
func (e *Event) HasAck() bool { return e != nil && e.id >= 0 && e.conn != nil }

// Ack answers the client's ack callback once. It is a no-op (nil) when no
// ack was asked; a second call returns an error. []byte arguments become
// binary attachments (BINARY_ACK).
func (e *Event) Ack(args ...any) error {
	if !e.HasAck() {
		return nil
	}
	if !e.acked.CompareAndSwap(false, true) {
		return errAlreadyAckd
	}
	text, bins, err := encodeSIO("", e.id, args)
	if err != nil {
		return err
	}
	return e.conn.Send(&Frame{text: text, bins: bins})
}
