package socketio

import (
	"encoding/binary"
	"net"
	"sync"
)

// The websocket writer frames messages itself and writes them to the
// connection's net.Conn: every frame queued when the writer runs goes out in
// one write (one syscall per batch, not per frame, as gorilla's WriteMessage
// would do), and a frame needs no gorilla PreparedMessage to be shared by
// many sockets, since a server frame is only a 2-10 byte header in front of
// the unmasked payload. Control frames (close, pong replies) are written by
// wsConn.writeControl; each write is a single Write call, and net.Conn
// serialises Write calls, so frames never interleave.

// WebSocket opcodes (RFC 6455 5.2), with FIN set: messages are never
// fragmented.
const (
	wsFinText   = 0x81
	wsFinBinary = 0x82
)

const (
	// wsFlushAt bounds a batch buffer: when the next frame would not fit,
	// what is buffered is written first.
	wsFlushAt = 32 << 10
	// wsDirectMin is the payload size from which a frame is written with
	// writev (header and payload as two buffers) instead of being copied
	// into the batch buffer.
	wsDirectMin = 16 << 10
	// wsMaxHeader is the longest server frame header (no mask key).
	wsMaxHeader = 10
)

// wsBufPool lends the writer its batch buffer for one drain of the queue, so
// an idle connection holds no write buffer.
var wsBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// appendWSHeader appends the header of an unmasked, final frame.
func appendWSHeader(b []byte, first byte, n int) []byte {
	switch {
	case n <= 125:
		return append(b, first, byte(n))
	case n <= 0xffff:
		return append(b, first, 126, byte(n>>8), byte(n))
	default:
		b = append(b, first, 127)
		return binary.BigEndian.AppendUint64(b, uint64(n))
	}
}

// wsWriter writes batches of frames to one connection.
type wsWriter struct {
	nc  net.Conn
	tcp *net.TCPConn // nc when it is a plain TCP connection (writev is one atomic call)
	bp  *[]byte      // pooled batch buffer, taken on first use
	buf []byte
}

func newWSWriter(nc net.Conn) wsWriter {
	tcp, _ := nc.(*net.TCPConn)
	return wsWriter{nc: nc, tcp: tcp}
}

// writeFrames writes every message of batch, flushing as few times as the
// buffer size allows.
func (w *wsWriter) writeFrames(batch []*Frame) error {
	if w.bp == nil {
		w.bp = wsBufPool.Get().(*[]byte)
		w.buf = (*w.bp)[:0]
	}
	for _, f := range batch {
		if f.text != nil {
			if err := w.add(wsFinText, f.text); err != nil {
				return err
			}
		}
		for _, b := range f.bins {
			if err := w.add(wsFinBinary, b); err != nil {
				return err
			}
		}
	}
	return w.flush()
}

func (w *wsWriter) add(first byte, p []byte) error {
	if len(p) >= wsDirectMin && w.tcp != nil {
		// Big payload: header (after what is buffered) and payload in one
		// writev, without copying the payload.
		w.buf = appendWSHeader(w.buf, first, len(p))
		bufs := net.Buffers{w.buf, p}
		_, err := bufs.WriteTo(w.tcp)
		w.buf = w.buf[:0]
		return err
	}
	if len(w.buf) > 0 && len(w.buf)+wsMaxHeader+len(p) > wsFlushAt {
		if err := w.flush(); err != nil {
			return err
		}
	}
	w.buf = appendWSHeader(w.buf, first, len(p))
	w.buf = append(w.buf, p...)
	return nil
}

func (w *wsWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.nc.Write(w.buf)
	w.buf = w.buf[:0]
	return err
}

// release returns the batch buffer to the pool, unless a big frame (on a
// connection without writev) grew it.
func (w *wsWriter) release() {
	if w.bp == nil {
		return
	}
	if cap(w.buf) <= 2*wsFlushAt {
		*w.bp = w.buf[:0]
		wsBufPool.Put(w.bp)
	}
	w.bp, w.buf = nil, nil
}
