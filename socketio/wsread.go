package socketio

import (
	"encoding/binary"
	"errors"
)

// The websocket read side is ours as well (gorilla only does the opening
// handshake): a parser that is handed whatever bytes the socket had, so a
// connection can be read when the kernel says it is readable (poll_linux.go)
// instead of by a goroutine parked in Read for its whole life.

// WebSocket opcodes (RFC 6455 5.2).
const (
	wsOpCont   = 0x0
	wsOpText   = 0x1
	wsOpBinary = 0x2
	wsOpClose  = 0x8
	wsOpPing   = 0x9
	wsOpPong   = 0xa
)

// Close codes (RFC 6455 7.4.1) the server sends.
const (
	wsCloseNormal   = 1000
	wsCloseProtocol = 1002
	wsCloseTooBig   = 1009
)

var (
	// errWSProtocol: the client broke RFC 6455 (unmasked frame, reserved
	// bits, unknown opcode, bad fragmentation or control frame).
	errWSProtocol = errors.New("socketio: websocket protocol error")
	// errWSTooBig: a message is longer than MaxPayload.
	errWSTooBig = errors.New("socketio: websocket message too big")
)

// wsReader parses the frames of a client: masked, no extension, messages
// possibly fragmented with control frames in between. Between reads it holds
// only an incomplete frame, if any, so an idle connection costs nothing here.
type wsReader struct {
	max    int    // longest message (MaxPayload)
	in     []byte // bytes not parsed yet: pend, or the caller's read buffer
	pend   []byte // own copy of an incomplete frame kept between reads
	frag   []byte // payload of the fragmented message being assembled
	fragOp byte   // its opcode, wsOpCont when none
}

// feed adds p, read from the socket, to what is parsed. p is borrowed until
// keep is called.
func (r *wsReader) feed(p []byte) {
	if len(r.pend) == 0 {
		r.in = p
		return
	}
	r.pend = append(r.pend, p...)
	r.in = r.pend
}

// keep copies the unparsed rest (an incomplete frame) into memory of the
// reader's own, so the caller's read buffer can be reused, and lets go of
// everything when nothing is left.
func (r *wsReader) keep() {
	rest := r.in
	r.in = nil
	if len(rest) == 0 {
		r.pend = nil
		return
	}
	if len(r.pend) > 0 && &rest[0] == &r.pend[0] {
		return // already at the start of pend
	}
	if len(r.pend) > 0 && &rest[len(rest)-1] == &r.pend[len(r.pend)-1] {
		n := copy(r.pend, rest) // a tail of pend: move it to the front
		r.pend = r.pend[:n]
		return
	}
	// Room for the whole frame when its length is known, so a big frame
	// arriving in many reads is not copied again on every one.
	size := len(rest)
	if hl, n, ok := frameLen(rest); ok && hl+n > size {
		size = hl + n
	}
	r.pend = append(make([]byte, 0, size), rest...)
}

// frameLen returns the header length and payload length of the frame at the
// start of b, when enough of its header is there.
func frameLen(b []byte) (hl, n int, ok bool) {
	if len(b) < 2 {
		return 0, 0, false
	}
	hl = 2
	switch l := b[1] & 0x7f; l {
	case 126:
		hl += 2
		if len(b) < hl {
			return 0, 0, false
		}
		n = int(binary.BigEndian.Uint16(b[2:]))
	case 127:
		hl += 8
		if len(b) < hl {
			return 0, 0, false
		}
		v := binary.BigEndian.Uint64(b[2:])
		if v > 1<<62 {
			v = 1 << 62 // refused as too big by next; only the length matters here
		}
		n = int(v)
	default:
		n = int(l)
	}
	if b[1]&0x80 != 0 {
		hl += 4
	}
	return hl, n, true
}

// next returns the next complete message (wsOpText, wsOpBinary) or control
// frame (wsOpPing, wsOpPong, wsOpClose) in what was fed, or op 0 when more
// bytes are needed. The payload is unmasked in place and valid until the
// next call of feed or next; the caller copies what it keeps. After an error
// the connection must be closed.
func (r *wsReader) next() (op byte, payload []byte, err error) {
	for {
		b := r.in
		hl, n, ok := frameLen(b)
		if !ok {
			return 0, nil, nil
		}
		fin, rsv, op := b[0]&0x80 != 0, b[0]&0x70, b[0]&0x0f
		switch {
		case rsv != 0, b[1]&0x80 == 0: // no extension was negotiated; clients must mask
			return 0, nil, errWSProtocol
		case op >= wsOpClose:
			if op > wsOpPong || !fin || n > 125 {
				return 0, nil, errWSProtocol
			}
		case op > wsOpBinary:
			return 0, nil, errWSProtocol
		case (op == wsOpCont) != (r.fragOp != wsOpCont):
			return 0, nil, errWSProtocol // a continuation without a start, or a new message inside one
		case n > r.max-len(r.frag):
			return 0, nil, errWSTooBig // before its payload is even buffered
		}
		if len(b) < hl+n {
			return 0, nil, nil
		}
		p := b[hl : hl+n]
		unmask(p, b[hl-4:hl])
		r.in = b[hl+n:]
		switch {
		case op >= wsOpClose:
			return op, p, nil
		case fin && op != wsOpCont:
			return op, p, nil
		case !fin && op != wsOpCont:
			r.fragOp = op
			r.frag = append([]byte(nil), p...)
		case !fin:
			r.frag = append(r.frag, p...)
		default: // the last fragment
			msg, op := append(r.frag, p...), r.fragOp
			r.frag, r.fragOp = nil, wsOpCont
			return op, msg, nil
		}
	}
}

// unmask XORs p with the 4-byte masking key, eight bytes at a time.
func unmask(p, key []byte) {
	k4 := binary.LittleEndian.Uint32(key)
	k8 := uint64(k4) | uint64(k4)<<32
	i := 0
	for ; i+8 <= len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], binary.LittleEndian.Uint64(p[i:])^k8)
	}
	for ; i < len(p); i++ {
		p[i] ^= key[i&3]
	}
}

// closePayload is the payload of a close frame with code and no reason.
func closePayload(code int) []byte {
	return []byte{byte(code >> 8), byte(code)}
}
