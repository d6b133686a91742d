package socketio

import (
	"bytes"
	"encoding/base64"
	"errors"
)

// Engine.IO v4 packet types, as the ASCII digit that starts a text packet.
const (
	eioOpen    = '0'
	eioClose   = '1'
	eioPing    = '2'
	eioPong    = '3'
	eioMessage = '4'
	eioUpgrade = '5'
	eioNoop    = '6'
)

// recordSep separates the packets of a polling payload.
const recordSep = 0x1e

var (
	errBadPacket   = errors.New("socketio: invalid engine.io packet")
	errTooMany     = errors.New("socketio: too many packets in payload")
	errEmptyPacket = errors.New("socketio: empty engine.io packet")
)

// enginePacket is one decoded Engine.IO packet. For a binary message typ is
// eioMessage and binary is true; data aliases the input buffer.
type enginePacket struct {
	typ    byte
	binary bool
	data   []byte
}

// decodeEngineText decodes one text packet (a websocket text message or one
// record of a polling payload, without the base64 case).
func decodeEngineText(b []byte) (enginePacket, error) {
	if len(b) == 0 {
		return enginePacket{}, errEmptyPacket
	}
	if b[0] < eioOpen || b[0] > eioNoop {
		return enginePacket{}, errBadPacket
	}
	return enginePacket{typ: b[0], data: b[1:]}, nil
}

// decodePayload splits a polling body into packets and calls fn for each, in
// order. It stops at the first error. A record starting with 'b' is a
// base64-encoded binary message.
func decodePayload(body []byte, maxPackets int, fn func(enginePacket) error) error {
	if len(body) == 0 {
		return errEmptyPacket
	}
	if bytes.Count(body, []byte{recordSep})+1 > maxPackets {
		return errTooMany
	}
	for body != nil {
		rec := body
		if i := bytes.IndexByte(body, recordSep); i >= 0 {
			rec, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		var p enginePacket
		if len(rec) > 0 && rec[0] == 'b' {
			dec := make([]byte, base64.StdEncoding.DecodedLen(len(rec)-1))
			n, err := base64.StdEncoding.Decode(dec, rec[1:])
			if err != nil {
				return errBadPacket
			}
			p = enginePacket{typ: eioMessage, binary: true, data: dec[:n]}
		} else {
			var err error
			if p, err = decodeEngineText(rec); err != nil {
				return err
			}
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}

// appendPollingBinary appends the polling form of a binary message.
func appendPollingBinary(dst, bin []byte) []byte {
	dst = append(dst, 'b')
	return base64.StdEncoding.AppendEncode(dst, bin)
}
