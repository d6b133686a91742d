package socketio

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync/atomic"
	"time"
)

var (
	errEmptyEvent  = errors.New("socketio: empty event name")
	errAlreadyAckd = errors.New("socketio: event already acknowledged")
)

// Server is a Socket.IO v5 server on the main namespace "/". Register the
// handlers before serving; they must not be changed afterwards.
type Server struct {
	e   *engine
	lim limits

	onConnect    func(c *Conn, auth json.RawMessage) error
	onEvent      func(c *Conn, ev *Event)
	onDisconnect func(c *Conn, reason string)

	count atomic.Int64
}

// NewServer returns a server configured by cfg (zero fields take defaults).
func NewServer(cfg Config) *Server {
	s := &Server{}
	s.e = newEngine(cfg, s)
	c := s.e.cfg
	s.lim = limits{maxAttachments: c.MaxAttachments, maxEventName: c.MaxEventNameLen, maxDepth: c.MaxDepth}
	return s
}

// ServeHTTP serves Engine.IO requests; mount it at cfg.Path.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.e.ServeHTTP(w, r) }

// OnConnect runs for each socket.io CONNECT with its auth payload (raw JSON,
// nil when absent). Returning an error refuses the connection with
// CONNECT_ERROR: a *ConnectError is sent as-is, any other error as
// {"message": err.Error()}. Frames emitted from OnConnect are delivered
// after the CONNECT reply when it accepts, and dropped when it refuses.
func (s *Server) OnConnect(fn func(c *Conn, auth json.RawMessage) error) { s.onConnect = fn }

// OnEvent runs for each EVENT / BINARY_EVENT of a connected socket.
func (s *Server) OnEvent(fn func(c *Conn, ev *Event)) { s.onEvent = fn }

// OnDisconnect runs exactly once for each socket that OnConnect accepted.
func (s *Server) OnDisconnect(fn func(c *Conn, reason string)) { s.onDisconnect = fn }

// Count returns the number of connected sockets.
func (s *Server) Count() int { return int(s.count.Load()) }

// Close disconnects everyone ("server shutting down"), refuses new sessions
// and waits (at most 5s) for every OnDisconnect to have returned.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.e.close(ctx)
	return nil
}

// StopAccepting makes the server refuse new clients ahead of a shutdown:
// Engine.IO handshakes get HTTP 503 and a session that asks to connect the
// socket.io namespace has its transport closed. Either way socket.io-client
// retries by itself (a CONNECT_ERROR would stop it). Connected sockets are
// not affected.
func (s *Server) StopAccepting() { s.e.refusing.Store(true) }

func (s *Server) onOpen(ss *session) { ss.armConnect(s.e.cfg.ConnectTimeout) }

func (s *Server) onMessage(ss *session, p enginePacket) error {
	if ss.pend != nil {
		if !p.binary {
			return errBadSIO
		}
		ss.pendB = append(ss.pendB, p.data)
		if len(ss.pendB) < ss.pend.attach {
			return nil
		}
		pk, bins := *ss.pend, ss.pendB
		ss.pend, ss.pendB = nil, nil
		return s.dispatch(ss, &pk, bins)
	}
	if p.binary {
		return errBadSIO
	}
	pk, err := decodeSIO(p.data, s.lim)
	if err != nil {
		return err
	}
	if pk.attach > 0 {
		ss.pend = &pk
		ss.pendB = make([][]byte, 0, pk.attach)
		return nil
	}
	return s.dispatch(ss, &pk, nil)
}

func (s *Server) dispatch(ss *session, pk *sioPacket, bins [][]byte) error {
	c := ss.sock
	switch pk.typ {
	case sioConnect:
		if pk.nsp != "/" {
			return ss.send(newFrame(encodeConnectError(pk.nsp, &ConnectError{Message: "Invalid namespace"})))
		}
		if c != nil {
			return nil // already connected: socket.io ignores a repeated CONNECT
		}
		var auth json.RawMessage
		if pk.hasData {
			auth = json.RawMessage(pk.data)
		}
		return s.connect(ss, auth)
	case sioDisconnect:
		if pk.nsp == "/" && c != nil {
			ss.mu.Lock()
			ss.sock = nil
			ss.mu.Unlock()
			s.finish(c, ReasonClientDisconnect)
			ss.armConnect(s.e.cfg.ConnectTimeout)
		}
	case sioEvent, sioBinaryEvent:
		if pk.nsp != "/" || c == nil || s.onEvent == nil || ss.ending() {
			// After a server-side close the ack could not be delivered:
			// the client resends once it has reconnected.
			return nil
		}
		s.onEvent(c, &Event{Name: pk.event, Args: pk.argsJSON, Attachments: bins, conn: c, id: pk.id})
	case sioAck, sioBinaryAck:
		if pk.nsp == "/" && c != nil {
			c.resolveAck(pk.id, pk.argsJSON)
		}
	}
	return nil
}

func (s *Server) connect(ss *session, auth json.RawMessage) error {
	if s.e.refusing.Load() {
		ss.close(ReasonServerShutdown, closeServer)
		return nil
	}
	c := &Conn{s: ss, srv: s, id: newID(), state: stateConnecting}
	ss.mu.Lock()
	ss.sock = c
	ss.mu.Unlock()
	var err error
	if s.onConnect != nil {
		err = s.onConnect(c, auth)
	}
	ss.mu.Lock()
	if ss.closed {
		c.state = stateClosed
		ss.sock = nil
		ss.mu.Unlock()
		return ErrClosed
	}
	if err != nil {
		c.state = stateClosed
		c.pre = nil
		ss.sock = nil
		ce, ok := err.(*ConnectError)
		if !ok {
			ce = &ConnectError{Message: err.Error()}
		}
		err = ss.sendLocked(newFrame(encodeConnectError("/", ce)))
		ss.mu.Unlock()
		if err == ErrQueueFull {
			ss.close(ReasonQueueOverflow, closeHard)
		}
		return nil
	}
	c.state = stateConnected
	pre := c.pre
	c.pre = nil
	err = ss.sendLocked(newFrame(encodeConnect(c.id)))
	for _, f := range pre {
		if err == nil {
			err = ss.sendLocked(f)
		}
	}
	ss.mu.Unlock()
	s.count.Add(1)
	ss.armConnect(0)
	if err == ErrQueueFull {
		ss.close(ReasonQueueOverflow, closeHard)
	}
	return nil
}

func (s *Server) onClose(ss *session, reason string) {
	if c := ss.sock; c != nil {
		ss.mu.Lock()
		ss.sock = nil
		ss.mu.Unlock()
		s.finish(c, reason)
	}
}

// finish marks c closed, fails its pending acks and runs OnDisconnect; it
// is called with readMu held, at most once per connected socket.
func (s *Server) finish(c *Conn, reason string) {
	ss := c.s
	ss.mu.Lock()
	if c.state != stateConnected {
		c.state = stateClosed
		ss.mu.Unlock()
		return
	}
	c.state = stateClosed
	acks := c.acks
	c.acks = nil
	ss.mu.Unlock()
	for _, ch := range acks {
		close(ch)
	}
	s.count.Add(-1)
	if s.onDisconnect != nil {
		s.onDisconnect(c, reason)
	}
}
