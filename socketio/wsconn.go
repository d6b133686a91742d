package socketio

import (
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// wsConn is the server side of one websocket connection once gorilla's
// Upgrader has answered the handshake: the hijacked net.Conn, read with
// wsReader and written by wsWriter (wswrite.go).
type wsConn struct {
	nc  net.Conn
	rc  syscall.RawConn // nil when nc has no descriptor (then never polled)
	rd  wsReader
	tok uint64 // its poller token, under the poller's lock
}

var (
	errAgain = errors.New("socketio: nothing to read")
	errEOF   = io.EOF
)

func newWSConn(nc net.Conn, maxPayload int) *wsConn {
	c := &wsConn{nc: nc, rd: wsReader{max: maxPayload}}
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			c.rc = rc
		}
	}
	return c
}

// writeControl writes one control frame in a single Write, which never
// interleaves with the writer's (net.Conn serialises them).
func (c *wsConn) writeControl(op byte, payload []byte, timeout time.Duration) error {
	b := make([]byte, 0, 2+len(payload))
	b = append(b, 0x80|op, byte(len(payload)))
	b = append(b, payload...)
	_ = c.nc.SetWriteDeadline(time.Now().Add(timeout))
	_, err := c.nc.Write(b)
	return err
}

// closeWS sends a normal close frame (best effort) and closes the socket.
func closeWS(c *wsConn) {
	_ = c.writeControl(wsOpClose, closePayload(wsCloseNormal), time.Second)
	_ = c.nc.Close()
}

// wsReadPool lends a reader its buffer while it reads a readable
// connection; an idle connection holds none.
var wsReadPool = sync.Pool{New: func() any { b := make([]byte, 8<<10); return &b }}

// watch has c read from now on: by the engine's poller when c has a
// descriptor (no goroutine while it is idle), else by a goroutine of its own.
// A session closed by then is not watched: the poller entry would outlive
// it (close removes it).
func (s *session) watch(c *wsConn) {
	if c.rc != nil {
		if p := s.e.getPoller(); p != nil {
			s.mu.Lock()
			if s.closed {
				s.mu.Unlock()
				return
			}
			err := p.add(s, c)
			s.mu.Unlock()
			if err == nil {
				return
			}
		}
	}
	go s.readLoop(c)
}

// unwatch stops the poller's reads of c (a no-op when it has no entry).
func (s *session) unwatch(c *wsConn) {
	if p := s.e.currentPoller(); p != nil {
		p.remove(c)
	}
}

// readReady reads and handles what the socket holds, without waiting. It
// reports whether the connection should be watched again.
func (s *session) readReady(c *wsConn) bool {
	bp := wsReadPool.Get().(*[]byte)
	defer wsReadPool.Put(bp)
	buf := *bp
	for {
		n, err := c.readNB(buf)
		if err == errAgain {
			return true
		}
		if err != nil {
			s.close(ReasonTransportClose, closeHard)
			return false
		}
		if !s.feed(c, buf[:n]) {
			return false
		}
		if n < len(buf) {
			// Most likely drained; if not, the re-armed poller fires
			// again at once.
			return true
		}
	}
}

// readLoop reads c with blocking reads until it closes: the way of
// connections the poller cannot watch.
func (s *session) readLoop(c *wsConn) {
	buf := make([]byte, 1024)
	for {
		n, err := c.nc.Read(buf)
		if n > 0 && !s.feed(c, buf[:n]) {
			return
		}
		if err != nil {
			s.close(ReasonTransportClose, closeHard)
			return
		}
	}
}

// feed handles the messages completed by p; false means the connection is
// done with (closed, or closing from the server side).
func (s *session) feed(c *wsConn, p []byte) bool {
	c.rd.feed(p)
	return s.handleBuffered(c)
}

// handleBuffered handles every complete message already fed to c's reader
// and keeps the incomplete rest.
func (s *session) handleBuffered(c *wsConn) bool {
	defer c.rd.keep()
	for {
		op, p, err := c.rd.next()
		switch {
		case err == errWSTooBig:
			_ = c.writeControl(wsOpClose, closePayload(wsCloseTooBig), time.Second)
			s.close(ReasonTransportError, closeHard)
			return false
		case err != nil:
			_ = c.writeControl(wsOpClose, closePayload(wsCloseProtocol), time.Second)
			s.close(ReasonTransportClose, closeHard)
			return false
		case op == 0:
			return true
		}
		if !s.wsMessage(c, op, p) {
			return false
		}
	}
}

// wsMessage handles one message or control frame.
func (s *session) wsMessage(c *wsConn, op byte, p []byte) bool {
	var pk enginePacket
	var err error
	switch op {
	case wsOpPing:
		_ = c.writeControl(wsOpPong, p, time.Second)
		return true
	case wsOpPong:
		return true
	case wsOpClose:
		if len(p) == 1 {
			_ = c.writeControl(wsOpClose, closePayload(wsCloseProtocol), time.Second)
		} else {
			_ = c.writeControl(wsOpClose, p[:min(len(p), 2)], time.Second) // echo the code
		}
		s.close(ReasonTransportClose, closeHard)
		return false
	case wsOpBinary:
		pk = enginePacket{typ: eioMessage, binary: true, data: copyPayload(p)}
	default:
		if len(p) == 1 && p[0] == eioPong {
			// The only traffic of an idle client: no allocation.
			pk = enginePacket{typ: eioPong, data: pongPacket[1:]}
		} else {
			pk, err = decodeEngineText(copyPayload(p))
		}
	}
	if err == nil {
		s.readMu.Lock()
		err = s.handlePacket(pk)
		s.readMu.Unlock()
	}
	switch err {
	case nil:
		return true
	case errClientClose, ErrClosed, ErrQueueFull:
		return false
	}
	s.e.cfg.Logger.Debug("socketio: closing connection on bad input", "sid", s.sid, "err", err)
	s.close(ReasonParseError, closeHard)
	return false
}

// copyPayload copies a message out of the read buffer at its exact size:
// handlers may keep what they are given.
func copyPayload(p []byte) []byte {
	return append(make([]byte, 0, len(p)), p...)
}

// pongPacket is the engine.io pong every idle client sends each
// PingInterval; it is only compared, never modified.
var pongPacket = []byte{eioPong}

// readMessage reads the next text or binary message with blocking reads
// into buf, answering pings: the upgrade probe's exchange, before the
// connection is watched. What follows the message stays in c's reader.
func (c *wsConn) readMessage(buf []byte) (byte, []byte, error) {
	for {
		op, p, err := c.rd.next()
		switch {
		case err != nil:
			return 0, nil, err
		case op == wsOpPing:
			_ = c.writeControl(wsOpPong, p, time.Second)
			continue
		case op == wsOpPong:
			continue
		case op == wsOpClose:
			return 0, nil, errEOF
		case op != 0:
			return op, p, nil
		}
		c.rd.keep()
		n, err := c.nc.Read(buf)
		if n > 0 {
			c.rd.feed(buf[:n])
			continue
		}
		if err != nil {
			return 0, nil, err
		}
	}
}
