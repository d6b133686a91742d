package socketio

import "sync"

// Frame is one encoded Engine.IO message plus its binary attachments, ready
// to be sent to any number of connections of either transport. The polling
// encoding is computed once, on first use, and shared by every recipient, so
// a broadcast costs one encoding per message, not one per recipient; the
// websocket writer needs no per-frame state (it frames the bytes as it
// copies them into its batch). A Frame is immutable and safe for
// concurrent use.
type Frame struct {
	text []byte   // engine.io packet, e.g. `42["ev",1]`
	bins [][]byte // binary attachments, one engine.io binary message each

	pollOnce sync.Once
	poll     []byte // text + \x1e b<base64> ... as one polling record group
}

// EncodeEvent encodes an EVENT (BINARY_EVENT when any top-level argument is
// a []byte) once, for Send to many connections. json.RawMessage arguments
// are inserted verbatim; others are marshalled with encoding/json.
func EncodeEvent(event string, args ...any) (*Frame, error) {
	if event == "" {
		return nil, errEmptyEvent
	}
	text, bins, err := encodeSIO(event, -1, args)
	if err != nil {
		return nil, err
	}
	return &Frame{text: text, bins: bins}, nil
}

func newFrame(text []byte) *Frame { return &Frame{text: text} }

// Engine.IO control frames shared by every connection.
var (
	framePing          = newFrame([]byte{eioPing})
	frameNoop          = newFrame([]byte{eioNoop})
	frameClose         = newFrame([]byte{eioClose})
	frameSIODisconnect = newFrame([]byte{eioMessage, '0' + sioDisconnect})
	frameProbe         = newFrame([]byte("3probe")) // the answer to an upgrade probe
)

// pollBytes returns the polling encoding of the frame: its packets joined by
// the record separator, binary attachments base64-encoded.
func (f *Frame) pollBytes() []byte {
	if len(f.bins) == 0 {
		return f.text
	}
	f.pollOnce.Do(func() {
		b := append([]byte(nil), f.text...)
		for i, bin := range f.bins {
			if i > 0 || f.text != nil {
				b = append(b, recordSep)
			}
			b = appendPollingBinary(b, bin)
		}
		f.poll = b
	})
	return f.poll
}
