package socketio

import (
	"encoding/json"
	"errors"
)

// Relaying: a gateway that fans out through a message bus encodes an event
// once on the sending node (EncodeEventPacket), ships the bytes, and wraps
// them on each receiving node (RawFrame) without decoding or re-encoding.

var errBinaryRelay = errors.New("socketio: binary arguments cannot be relayed as one packet")

// EncodeEventPacket encodes an EVENT as its Engine.IO text packet, e.g.
// `42["message:new",{...}]`. Binary ([]byte) arguments are refused: they
// would need separate attachment messages.
func EncodeEventPacket(event string, args ...any) ([]byte, error) {
	if event == "" {
		return nil, errEmptyEvent
	}
	text, bins, err := encodeSIO(event, -1, args)
	if err != nil {
		return nil, err
	}
	if len(bins) > 0 {
		return nil, errBinaryRelay
	}
	return text, nil
}

// RawFrame wraps a packet made by EncodeEventPacket (possibly on another
// node) for Send. The caller must not modify packet afterwards.
func RawFrame(packet []byte) *Frame { return newFrame(packet) }

// EventPacketTemplate returns the parts around the single JSON argument of
// an EVENT packet: prefix + argument + suffix is what EncodeEventPacket(event,
// argument) returns. It lets a packet be completed where the argument is
// produced, e.g. inside a Redis script that assigns a message's seq.
func EventPacketTemplate(event string) (prefix, suffix []byte, err error) {
	const mark = "0"
	p, err := EncodeEventPacket(event, json.RawMessage(mark))
	if err != nil {
		return nil, nil, err
	}
	// The packet ends with the argument followed by "]".
	return p[:len(p)-len(mark)-1], []byte("]"), nil
}
