package socketio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// clientFrame encodes a frame as a client sends it: masked with key.
func clientFrame(fin bool, op byte, payload []byte, key [4]byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i&3])
	}
	return b
}

type wsMsg struct {
	op   byte
	data string
}

// drain returns every complete message in r.
func drain(t *testing.T, r *wsReader) []wsMsg {
	t.Helper()
	var out []wsMsg
	for {
		op, p, err := r.next()
		if err != nil {
			t.Fatal(err)
		}
		if op == 0 {
			return out
		}
		out = append(out, wsMsg{op, string(p)})
	}
}

// The reader yields every message and control frame intact and in order,
// however the stream is cut into reads, and although each read's buffer is
// overwritten right after (as the pooled read buffer is); between messages
// it holds no memory.
func TestWSReaderFrames(t *testing.T) {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	big := strings.Repeat("0123456789abcdef", 70000/16+1)
	var stream []byte
	var want []wsMsg
	add := func(fin bool, op byte, payload string) {
		stream = append(stream, clientFrame(fin, op, []byte(payload), key)...)
	}
	add(true, wsOpText, "3")
	want = append(want, wsMsg{wsOpText, "3"})
	add(true, wsOpText, "")
	want = append(want, wsMsg{wsOpText, ""})
	add(false, wsOpBinary, "ab") // fragmented, with control frames in between
	add(true, wsOpPing, "p1")
	add(false, wsOpCont, "cd")
	add(true, wsOpPong, "")
	add(true, wsOpCont, "ef")
	want = append(want, wsMsg{wsOpPing, "p1"}, wsMsg{wsOpPong, ""}, wsMsg{wsOpBinary, "abcdef"})
	add(true, wsOpText, big[:300]) // 16-bit length
	want = append(want, wsMsg{wsOpText, big[:300]})
	add(true, wsOpBinary, big) // 64-bit length
	want = append(want, wsMsg{wsOpBinary, big})
	add(true, wsOpText, "4"+big[:125])
	want = append(want, wsMsg{wsOpText, "4" + big[:125]})
	add(true, wsOpClose, "\x03\xe8")
	want = append(want, wsMsg{wsOpClose, "\x03\xe8"})

	for _, chunk := range []int{1, 2, 3, 7, 13, 100, 4096, len(stream)} {
		t.Run(fmt.Sprint(chunk), func(t *testing.T) {
			r := wsReader{max: 1 << 20}
			buf := make([]byte, chunk)
			var got []wsMsg
			for off := 0; off < len(stream); off += chunk {
				n := copy(buf, stream[off:])
				r.feed(buf[:n])
				got = append(got, drain(t, &r)...)
				r.keep()
				for i := range buf {
					buf[i] = 0xee // the read buffer is reused
				}
				if r.in != nil {
					t.Fatal("the reader still points into the read buffer")
				}
			}
			if len(got) != len(want) {
				t.Fatalf("%d messages, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("message %d: op %d %.20q, want op %d %.20q", i, got[i].op, got[i].data, want[i].op, want[i].data)
				}
			}
			if r.pend != nil || r.frag != nil {
				t.Fatal("memory held after the last message")
			}
		})
	}
}

func TestWSReaderErrors(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	frame := func(fin bool, op byte, n int) []byte { return clientFrame(fin, op, bytes.Repeat([]byte{'x'}, n), key) }
	unmasked := []byte{0x81, 1, 'x'}
	for name, tc := range map[string]struct {
		in   []byte
		want error
	}{
		"unmasked":                {unmasked, errWSProtocol},
		"reserved bit":            {append([]byte{0xc1}, frame(true, wsOpText, 1)[1:]...), errWSProtocol},
		"unknown data opcode":     {frame(true, 0x3, 1), errWSProtocol},
		"unknown control opcode":  {frame(true, 0xb, 1), errWSProtocol},
		"long control frame":      {frame(true, wsOpPing, 126), errWSProtocol},
		"fragmented control":      {frame(false, wsOpPing, 1), errWSProtocol},
		"continuation first":      {frame(true, wsOpCont, 1), errWSProtocol},
		"message inside fragment": {append(frame(false, wsOpText, 1), frame(true, wsOpText, 1)...), errWSProtocol},
		// Refused from its header alone, before the payload is buffered.
		"too big":           {frame(true, wsOpText, 101)[:8], errWSTooBig},
		"too big fragments": {append(frame(false, wsOpText, 60), frame(true, wsOpCont, 41)[:8]...), errWSTooBig},
		"huge length":       {append([]byte{0x81, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0}, key[:]...), errWSTooBig},
	} {
		t.Run(name, func(t *testing.T) {
			r := wsReader{max: 100}
			r.feed(tc.in)
			var err error
			for err == nil {
				var op byte
				if op, _, err = r.next(); op == 0 && err == nil {
					t.Fatal("no error: waiting for more bytes")
				}
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("exactly max", func(t *testing.T) {
		r := wsReader{max: 100}
		r.feed(append(frame(false, wsOpText, 60), frame(true, wsOpCont, 40)...))
		if got := drain(t, &r); len(got) != 1 || len(got[0].data) != 100 {
			t.Fatalf("got %v", got)
		}
	})
}

func TestUnmask(t *testing.T) {
	key := []byte{0xde, 0xad, 0xbe, 0xef}
	for n := range 40 {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i * 7)
		}
		unmask(p, key)
		for i := range p {
			if p[i] != byte(i*7)^key[i%4] {
				t.Fatalf("len %d byte %d", n, i)
			}
		}
	}
}
