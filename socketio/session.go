package socketio

import (
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

const (
	transportPolling uint8 = iota
	transportWebsocket
)

// closeMode says who closes a session, which decides what is still flushed.
type closeMode uint8

const (
	// closeServer flushes what is queued (plus the engine.io close packet
	// for polling) before the transport goes away.
	closeServer closeMode = iota
	// closeHard drops the queue: ping timeout, bad input, overflow, I/O error.
	closeHard
	// closeClient: the client sent a close packet; a pending poll gets noop.
	closeClient
)

// upgradeTimeout bounds the probe/upgrade exchange of a polling->websocket upgrade.
const upgradeTimeout = 10 * time.Second

// errClientClose stops processing a payload after the client's close packet.
var errClientClose = errors.New("socketio: closed by client")

// session is one Engine.IO connection. Fields under mu are shared between
// the read path, the writer, timers and Send callers; the socket.io fields
// (sock, pend) are touched only with readMu held.
type session struct {
	e   *engine
	sid string
	req *http.Request

	readMu sync.Mutex
	sock   *Conn
	pend   *sioPacket
	pendB  [][]byte
	connT  *time.Timer

	mu           sync.Mutex
	transport    uint8
	closed       bool
	closing      bool // CloseTransport waits for the running handler
	upgrading    bool
	writing      bool          // a websocket writer goroutine is running
	polling      bool          // a GET is pending
	posting      bool          // a POST is being read
	noop         bool          // upgrade probed: polls are answered with noop
	upgraded     chan struct{} // closed when an upgrade completes
	probeAt      time.Time
	awaitingPong bool
	final        *Frame // the last frame a poll receives after close
	finalSent    bool
	queue, spare []*Frame
	ws           *websocket.Conn
	upgradeWS    *websocket.Conn
	wake         chan struct{}
	hb           *time.Timer
	hbDue        time.Time
}

func newSession(e *engine, sid string, req *http.Request, transport uint8) *session {
	s := &session{e: e, sid: sid, req: req, transport: transport}
	if transport == transportPolling {
		s.wake = make(chan struct{}, 1)
	}
	return s
}

// start arms the heartbeat. One timer per session, re-armed with Reset, so
// a ping cycle allocates nothing.
func (s *session) start() {
	s.mu.Lock()
	s.hbDue = time.Now().Add(s.e.cfg.PingInterval)
	s.hb = time.AfterFunc(s.e.cfg.PingInterval, s.heartbeat)
	s.mu.Unlock()
}

func (s *session) lockedOpen() {
	s.readMu.Lock()
	s.e.h.onOpen(s)
	s.readMu.Unlock()
}

func (s *session) heartbeat() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	// A pong may have re-armed the timer while this run was waiting for mu.
	if d := time.Until(s.hbDue); d > time.Millisecond {
		s.hb.Reset(d)
		s.mu.Unlock()
		return
	}
	if s.awaitingPong {
		s.mu.Unlock()
		s.close(ReasonPingTimeout, closeHard)
		return
	}
	s.awaitingPong = true
	s.hbDue = time.Now().Add(s.e.cfg.PingTimeout)
	s.hb.Reset(s.e.cfg.PingTimeout)
	err := s.sendLocked(framePing)
	s.mu.Unlock()
	if err == ErrQueueFull {
		s.close(ReasonQueueOverflow, closeHard)
	}
}

func (s *session) gotPong() {
	s.mu.Lock()
	if s.awaitingPong && !s.closed {
		s.awaitingPong = false
		s.hbDue = time.Now().Add(s.e.cfg.PingInterval)
		s.hb.Reset(s.e.cfg.PingInterval)
	}
	s.mu.Unlock()
}

// ending reports whether the server closed the session or is about to
// (CloseTransport): events are not handled any more.
func (s *session) ending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed || s.closing
}

// send queues f; on overflow the session is closed and ErrQueueFull returned.
func (s *session) send(f *Frame) error {
	s.mu.Lock()
	err := s.sendLocked(f)
	s.mu.Unlock()
	if err == ErrQueueFull {
		s.close(ReasonQueueOverflow, closeHard)
	}
	return err
}

func (s *session) sendLocked(f *Frame) error {
	if s.closed {
		return ErrClosed
	}
	if len(s.queue) >= s.e.cfg.SendQueue {
		return ErrQueueFull
	}
	s.queue = append(s.queue, f)
	s.kickLocked()
	return nil
}

// kickLocked makes the transport drain the queue: it wakes a pending poll,
// or starts a websocket writer. The writer exits when the queue is empty, so
// an idle connection has no goroutine parked on writing.
func (s *session) kickLocked() {
	if s.transport == transportWebsocket {
		if !s.writing && s.ws != nil {
			s.writing = true
			go s.writeLoop(s.ws)
		}
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *session) writeLoop(conn *websocket.Conn) {
	w := newWSWriter(conn.NetConn())
	defer w.release()
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.writing = false
			fin := s.closed
			s.mu.Unlock()
			if fin {
				closeWS(conn)
			}
			return
		}
		batch := s.queue
		s.queue, s.spare = s.spare, nil
		s.mu.Unlock()

		// The deadline is set on the net.Conn directly: the frames
		// bypass gorilla's writer (see wswrite.go).
		err := w.nc.SetWriteDeadline(time.Now().Add(s.e.cfg.WriteTimeout))
		if err == nil {
			err = w.writeFrames(batch)
		}
		clear(batch)
		s.mu.Lock()
		if cap(batch) <= 32 && s.spare == nil {
			s.spare = batch[:0]
		}
		if err != nil {
			s.writing = false
			s.mu.Unlock()
			_ = conn.Close()
			s.close(ReasonTransportError, closeHard)
			return
		}
		s.mu.Unlock()
	}
}

// closeWS sends a normal close frame (best effort) and closes the socket.
func closeWS(conn *websocket.Conn) {
	_ = conn.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
		time.Now().Add(time.Second))
	_ = conn.Close()
}

// close ends the session once; later calls are no-ops. The handler's onClose
// runs in its own goroutine under readMu, so it is serialised with the
// session's other handlers even when close is called from inside one.
func (s *session) close(reason string, mode closeMode) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	// Counted under mu: engine.close calls close on every session and
	// then waits, so a close that won the race (from a read loop) must
	// have added itself before engine.close's call returns.
	s.e.dispatch.Add(1)
	if s.hb != nil {
		s.hb.Stop()
	}
	keep := false // stays registered until a poll collects the queue
	if s.upgradeWS != nil && mode != closeServer {
		// A graceful close lets a running upgrade finish: the client may
		// already have switched, and the final frames then go over it.
		_ = s.upgradeWS.Close()
		s.upgradeWS = nil
	}
	switch {
	case mode == closeServer && s.transport == transportPolling:
		// The close packet goes in a poll of its own after the queue:
		// socket.io-client handles a DISCONNECT a tick late, and would
		// report "transport close" if the close came in the same payload.
		s.final = frameClose
		keep = true
		time.AfterFunc(s.e.cfg.PingTimeout, func() { s.e.unregister(s) })
		s.kickLocked()
	case mode == closeServer: // websocket: the writer closes after the flush
		if !s.writing {
			if len(s.queue) > 0 {
				s.writing = true
				go s.writeLoop(s.ws)
			} else if s.ws != nil {
				go closeWS(s.ws)
			}
		}
	default:
		s.queue = nil
		s.final = frameClose
		if mode == closeClient {
			s.final = frameNoop
		}
		if s.ws != nil {
			_ = s.ws.Close()
		}
		if s.wake != nil {
			s.kickLocked()
			if mode == closeClient && !s.polling {
				// A poll racing the client's close packet still gets
				// its noop rather than "unknown session".
				keep = true
				time.AfterFunc(s.e.cfg.PingTimeout, func() { s.e.unregister(s) })
			}
		}
	}
	s.mu.Unlock()
	if !keep {
		s.e.unregister(s)
	}
	go func() {
		defer s.e.dispatch.Done()
		s.readMu.Lock()
		defer s.readMu.Unlock()
		s.e.h.onClose(s, reason)
	}()
}

// handlePacket processes one inbound engine.io packet, with readMu held.
func (s *session) handlePacket(p enginePacket) error {
	switch p.typ {
	case eioMessage:
		return s.e.h.onMessage(s, p)
	case eioPong:
		s.gotPong()
	case eioPing:
		// v4 clients do not ping outside the upgrade probe; answer anyway.
		return s.send(newFrame(append([]byte{eioPong}, p.data...)))
	case eioClose:
		s.close(ReasonTransportClose, closeClient)
		return errClientClose
	case eioUpgrade, eioNoop:
	default:
		return errBadPacket
	}
	return nil
}

// readWebsocket is the read loop of a websocket session; it ends with the
// connection.
func (s *session) readWebsocket(conn *websocket.Conn) {
	conn.SetReadLimit(int64(s.e.cfg.MaxPayload))
	for {
		mt, data, err := readWS(conn)
		if err != nil {
			reason := ReasonTransportClose
			if errors.Is(err, websocket.ErrReadLimit) {
				reason = ReasonTransportError
			}
			s.close(reason, closeHard)
			return
		}
		var p enginePacket
		if mt == websocket.BinaryMessage {
			p = enginePacket{typ: eioMessage, binary: true, data: data}
		} else {
			p, err = decodeEngineText(data)
		}
		if err == nil {
			s.readMu.Lock()
			err = s.handlePacket(p)
			s.readMu.Unlock()
		}
		if err == errClientClose || err == ErrClosed || err == ErrQueueFull {
			return
		}
		if err != nil {
			s.e.cfg.Logger.Debug("socketio: closing connection on bad input", "sid", s.sid, "err", err)
			s.close(ReasonParseError, closeHard)
			return
		}
	}
}

// upgrade moves a polling session to websocket: probe, noop for the pending
// poll, then the client's upgrade packet.
func (e *engine) upgrade(w http.ResponseWriter, r *http.Request, sid string) {
	s := e.lookup(sid)
	if s == nil {
		writeError(w, http.StatusBadRequest, errCodeUnknownSID)
		return
	}
	conn, err := e.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s.mu.Lock()
	if s.closed || s.transport != transportPolling || s.upgrading {
		// Like the reference server: accept, then close the extra socket.
		s.mu.Unlock()
		closeWS(conn)
		return
	}
	s.upgrading = true
	s.upgradeWS = conn
	s.mu.Unlock()
	go s.runUpgrade(conn)
}

func (s *session) runUpgrade(conn *websocket.Conn) {
	conn.SetReadLimit(int64(s.e.cfg.MaxPayload))
	fail := func() {
		s.mu.Lock()
		s.upgrading = false
		s.noop = false
		if s.upgradeWS == conn {
			s.upgradeWS = nil
		}
		s.mu.Unlock()
		_ = conn.Close()
	}
	_ = conn.SetReadDeadline(time.Now().Add(upgradeTimeout))
	mt, msg, err := conn.ReadMessage()
	if err != nil || mt != websocket.TextMessage || string(msg) != "2probe" {
		fail()
		return
	}
	_ = conn.SetWriteDeadline(time.Now().Add(s.e.cfg.WriteTimeout))
	if err := conn.WriteMessage(websocket.TextMessage, []byte("3probe")); err != nil {
		fail()
		return
	}
	s.mu.Lock()
	s.noop = true
	s.upgraded = make(chan struct{})
	s.probeAt = time.Now()
	s.kickLocked()
	s.mu.Unlock()

	mt, msg, err = conn.ReadMessage()
	if err != nil || mt != websocket.TextMessage || string(msg) != "5" {
		fail()
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	s.mu.Lock()
	if s.closed && s.final != nil && len(s.queue) == 0 { // nothing left to deliver
		s.mu.Unlock()
		_ = conn.Close()
		return
	}
	// Wake a poll still pending so it ends with noop, then switch.
	select {
	case s.wake <- struct{}{}:
	default:
	}
	s.transport = transportWebsocket
	close(s.upgraded)
	s.ws = conn
	s.upgrading = false
	s.upgradeWS = nil
	if len(s.queue) > 0 {
		s.kickLocked()
	}
	s.mu.Unlock()
	s.readWebsocket(conn)
}
