package socketio

import (
	"errors"
	"net/http"
	"sync"
	"time"
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
// the read path, the writer, the timer queue and Send callers; the socket.io
// fields (sock, pend) are touched only with readMu held. Its size is what
// every idle connection costs, so fields stay small and nothing is
// allocated before it is needed.
type session struct {
	e   *engine
	sid string
	hs  handshake
	tm  timerEntry // heartbeat, connect timeout and ExpireAt, in e.timers

	readMu sync.Mutex
	sock   *Conn
	pend   *sioPacket
	pendB  [][]byte

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
	probeAt      int64         // when the upgrade was probed, in timers.now's time
	awaitingPong bool
	final        *Frame // the last frame a poll receives after close
	finalSent    bool
	queue, spare []*Frame
	ws           *wsConn
	upgradeWS    *wsConn
	wake         chan struct{}
	// Deadlines in e.timers' time (timerQueue.now): the next ping, or the
	// pong's deadline while awaitingPong; the socket.io CONNECT's, 0 when
	// none is awaited.
	hbDue, connDue int64
}

func newSession(e *engine, sid string, r *http.Request, transport uint8) *session {
	s := &session{e: e, sid: sid, hs: newHandshake(r), transport: transport}
	s.tm.owner = s
	if transport == transportPolling {
		s.wake = make(chan struct{}, 1)
	}
	return s
}

// start arms the heartbeat.
func (s *session) start() {
	s.mu.Lock()
	if !s.closed {
		s.hbDue = s.e.timers.now() + int64(s.e.cfg.PingInterval)
		s.e.timers.schedule(&s.tm, s.hbDue)
	}
	s.mu.Unlock()
}

// armConnect expects a socket.io CONNECT within d (the session is closed
// without one); zero stops waiting for it.
func (s *session) armConnect(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d == 0 || s.closed {
		s.connDue = 0
		return
	}
	s.connDue = s.e.timers.now() + int64(d)
	s.e.timers.schedule(&s.tm, s.connDue)
}

func (s *session) lockedOpen() {
	s.readMu.Lock()
	s.e.h.onOpen(s)
	s.readMu.Unlock()
}

// onTimer runs from the timer queue when a deadline of the session may have
// passed; it returns the next one (0: none, the session is closed).
func (s *session) onTimer(now int64) int64 {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0
	}
	if s.connDue != 0 && now >= s.connDue {
		s.connDue = 0
		if s.sock == nil || s.sock.state != stateConnected {
			s.mu.Unlock()
			s.close(ReasonTransportClose, closeServer)
			return 0
		}
	}
	var expired func()
	if c := s.sock; c != nil && c.expAt != 0 && now >= c.expAt {
		if c.state != stateClosed {
			expired = c.expFn
		}
		c.expAt, c.expFn = 0, nil
	}
	var err error
	if now >= s.hbDue { // else a pong moved the deadline since
		if s.awaitingPong {
			s.mu.Unlock()
			s.close(ReasonPingTimeout, closeHard)
			return 0
		}
		s.awaitingPong = true
		s.hbDue = now + int64(s.e.cfg.PingTimeout)
		err = s.sendLocked(framePing)
	}
	next := s.hbDue
	if s.connDue != 0 {
		next = min(next, s.connDue)
	}
	if c := s.sock; c != nil && c.expAt != 0 {
		next = min(next, c.expAt)
	}
	s.mu.Unlock()
	if expired != nil {
		go expired()
	}
	if err == ErrQueueFull {
		s.close(ReasonQueueOverflow, closeHard)
		return 0
	}
	return next
}

// gotPong moves the next ping a PingInterval on; the queue finds out when
// the pong's deadline comes (onTimer), so a pong costs no timer operation.
func (s *session) gotPong() {
	s.mu.Lock()
	if s.awaitingPong && !s.closed {
		s.awaitingPong = false
		s.hbDue = s.e.timers.now() + int64(s.e.cfg.PingInterval)
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

func (s *session) writeLoop(conn *wsConn) {
	w := newWSWriter(conn.nc)
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

		// Each batch gets its own deadline, set on the net.Conn (see
		// wswrite.go).
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
			_ = conn.nc.Close()
			s.close(ReasonTransportError, closeHard)
			return
		}
		s.mu.Unlock()
	}
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
	s.e.timers.remove(&s.tm)
	if s.ws != nil {
		s.unwatch(s.ws)
	}
	keep := false // stays registered until a poll collects the queue
	if s.upgradeWS != nil && mode != closeServer {
		// A graceful close lets a running upgrade finish: the client may
		// already have switched, and the final frames then go over it.
		_ = s.upgradeWS.nc.Close()
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
			_ = s.ws.nc.Close()
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

// upgrade moves a polling session to websocket: probe, noop for the pending
// poll, then the client's upgrade packet.
func (e *engine) upgrade(w http.ResponseWriter, r *http.Request, sid string) {
	s := e.lookup(sid)
	if s == nil {
		writeError(w, http.StatusBadRequest, errCodeUnknownSID)
		return
	}
	conn, err := e.upgradeConn(w, r)
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

func (s *session) runUpgrade(conn *wsConn) {
	fail := func() {
		s.mu.Lock()
		s.upgrading = false
		s.noop = false
		if s.upgradeWS == conn {
			s.upgradeWS = nil
		}
		s.mu.Unlock()
		_ = conn.nc.Close()
	}
	// Blocking reads for the probe exchange (short, and bounded by
	// upgradeTimeout); the connection is watched once it has switched.
	buf := make([]byte, 512)
	_ = conn.nc.SetReadDeadline(time.Now().Add(upgradeTimeout))
	op, msg, err := conn.readMessage(buf)
	if err != nil || op != wsOpText || string(msg) != "2probe" {
		fail()
		return
	}
	probe := newWSWriter(conn.nc)
	err = conn.nc.SetWriteDeadline(time.Now().Add(s.e.cfg.WriteTimeout))
	if err == nil {
		err = probe.writeFrames([]*Frame{frameProbe})
	}
	probe.release()
	if err != nil {
		fail()
		return
	}
	s.mu.Lock()
	s.noop = true
	s.upgraded = make(chan struct{})
	s.probeAt = s.e.timers.now()
	s.kickLocked()
	s.mu.Unlock()

	op, msg, err = conn.readMessage(buf)
	if err != nil || op != wsOpText || string(msg) != "5" {
		fail()
		return
	}
	_ = conn.nc.SetReadDeadline(time.Time{})
	s.mu.Lock()
	if s.closed && s.final != nil && len(s.queue) == 0 { // nothing left to deliver
		s.mu.Unlock()
		_ = conn.nc.Close()
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
	// What the client sent right after its upgrade packet may already be
	// in the reader.
	if s.handleBuffered(conn) {
		s.watch(conn)
	}
}
