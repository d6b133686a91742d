package socketio

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Socket.IO v5 packet types.
const (
	sioConnect      = 0
	sioDisconnect   = 1
	sioEvent        = 2
	sioAck          = 3
	sioConnectError = 4
	sioBinaryEvent  = 5
	sioBinaryAck    = 6
)

// maxAckID keeps ack ids inside JavaScript's safe integers.
const maxAckID = 1<<53 - 1

var errBadSIO = errors.New("socketio: invalid socket.io packet")

// limits are the client-controlled sizes the decoder enforces.
type limits struct {
	maxAttachments int
	maxEventName   int
	maxDepth       int
}

// sioPacket is a decoded Socket.IO packet. data is the raw JSON payload (nil
// when absent) and aliases the input.
type sioPacket struct {
	typ      int
	attach   int
	nsp      string // "/" when absent
	id       int64  // -1 when absent
	data     []byte
	hasData  bool
	argsJSON []json.RawMessage // EVENT/ACK payload split into elements
	event    string            // EVENT name
}

// decodeSIO parses "<type>[<n>-][<nsp>,][<id>][<json>]" and validates the
// payload shape for the packet type like socket.io-parser does.
func decodeSIO(b []byte, lim limits) (sioPacket, error) {
	p := sioPacket{nsp: "/", id: -1}
	if len(b) == 0 || b[0] < '0' || b[0] > '6' {
		return p, errBadSIO
	}
	p.typ = int(b[0] - '0')
	i := 1
	if p.typ == sioBinaryEvent || p.typ == sioBinaryAck {
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == start || i >= len(b) || b[i] != '-' || i-start > 4 {
			return p, errBadSIO
		}
		n, _ := strconv.Atoi(string(b[start:i]))
		if n > lim.maxAttachments {
			return p, fmt.Errorf("socketio: %d attachments, limit %d", n, lim.maxAttachments)
		}
		p.attach = n
		i++
	}
	if i < len(b) && b[i] == '/' {
		start := i
		for i < len(b) && b[i] != ',' {
			i++
		}
		if i-start > 256 {
			return p, errBadSIO
		}
		p.nsp = string(b[start:i])
		if i < len(b) {
			i++ // the comma
		}
	}
	if i < len(b) && b[i] >= '0' && b[i] <= '9' {
		start := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i-start > 16 {
			return p, errBadSIO
		}
		id, err := strconv.ParseInt(string(b[start:i]), 10, 64)
		if err != nil || id > maxAckID {
			return p, errBadSIO
		}
		p.id = id
	}
	if i < len(b) {
		p.data, p.hasData = b[i:], true
		if err := checkDepth(p.data, lim.maxDepth); err != nil {
			return p, err
		}
		if !json.Valid(p.data) {
			return p, errBadSIO
		}
	}
	switch p.typ {
	case sioConnect:
		if p.hasData && p.data[0] != '{' {
			return p, errBadSIO
		}
	case sioDisconnect:
		if p.hasData {
			return p, errBadSIO
		}
	case sioConnectError:
		// Only servers send it; accept any payload and let the caller ignore it.
	case sioEvent, sioBinaryEvent:
		if !p.hasData || p.data[0] != '[' {
			return p, errBadSIO
		}
		if err := json.Unmarshal(p.data, &p.argsJSON); err != nil || len(p.argsJSON) == 0 {
			return p, errBadSIO
		}
		name := p.argsJSON[0]
		if len(name) == 0 || name[0] != '"' || len(name) > lim.maxEventName*6+2 {
			return p, errBadSIO
		}
		if err := json.Unmarshal(name, &p.event); err != nil || len(p.event) > lim.maxEventName {
			return p, errBadSIO
		}
		p.argsJSON = p.argsJSON[1:]
	case sioAck, sioBinaryAck:
		if p.id < 0 || !p.hasData || p.data[0] != '[' {
			return p, errBadSIO
		}
		if err := json.Unmarshal(p.data, &p.argsJSON); err != nil {
			return p, errBadSIO
		}
	}
	if p.attach > 0 && p.typ != sioBinaryEvent && p.typ != sioBinaryAck {
		return p, errBadSIO
	}
	return p, nil
}

// checkDepth rejects JSON nested deeper than max without parsing it, so a
// "[[[[..." bomb costs one linear scan.
func checkDepth(b []byte, max int) error {
	depth, inStr, esc := 0, false, false
	for _, c := range b {
		if inStr {
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '[', '{':
			depth++
			if depth > max {
				return fmt.Errorf("socketio: JSON nested deeper than %d", max)
			}
		case ']', '}':
			depth--
		}
	}
	return nil
}

// encodeSIO builds the engine.io message "4<type>[<n>-][<id>][...]" for an
// EVENT (name != "") or ACK (name == "") with args. Top-level []byte args
// become binary attachments; json.RawMessage args are copied verbatim.
func encodeSIO(name string, id int64, args []any) (text []byte, bins [][]byte, err error) {
	// Encode the array first: attachments are only known afterwards.
	arr := make([]byte, 0, 64)
	arr = append(arr, '[')
	n := 0
	if name != "" {
		nb, _ := json.Marshal(name)
		arr = append(arr, nb...)
		n++
	}
	for _, a := range args {
		if n > 0 {
			arr = append(arr, ',')
		}
		n++
		switch v := a.(type) {
		case []byte:
			arr = append(arr, `{"_placeholder":true,"num":`...)
			arr = strconv.AppendInt(arr, int64(len(bins)), 10)
			arr = append(arr, '}')
			bins = append(bins, v)
		case json.RawMessage:
			if !json.Valid(v) {
				return nil, nil, fmt.Errorf("socketio: argument %d is invalid JSON", n)
			}
			arr = append(arr, v...)
		case nil:
			arr = append(arr, "null"...)
		case string:
			nb, err := json.Marshal(v)
			if err != nil {
				return nil, nil, err
			}
			arr = append(arr, nb...)
		default:
			nb, err := json.Marshal(v)
			if err != nil {
				return nil, nil, fmt.Errorf("socketio: argument %d: %w", n, err)
			}
			arr = append(arr, nb...)
		}
	}
	arr = append(arr, ']')

	text = make([]byte, 0, len(arr)+24)
	text = append(text, eioMessage)
	typ := byte(sioEvent)
	if name == "" {
		typ = sioAck
	}
	if len(bins) > 0 {
		typ += 3 // EVENT->BINARY_EVENT, ACK->BINARY_ACK
	}
	text = append(text, '0'+typ)
	if len(bins) > 0 {
		text = strconv.AppendInt(text, int64(len(bins)), 10)
		text = append(text, '-')
	}
	if id >= 0 {
		text = strconv.AppendInt(text, id, 10)
	}
	text = append(text, arr...)
	return text, bins, nil
}

// encodeConnect builds CONNECT {"sid":...} and CONNECT_ERROR frames.
func encodeConnect(sid string) []byte {
	b, _ := json.Marshal(struct {
		SID string `json:"sid"`
	}{sid})
	return append([]byte{eioMessage, '0'}, b...)
}

func encodeConnectError(nsp string, ce *ConnectError) []byte {
	var body []byte
	if ce.Data != nil {
		b, err := json.Marshal(struct {
			Message string `json:"message"`
			Data    any    `json:"data"`
		}{ce.Message, ce.Data})
		if err == nil {
			body = b
		}
	}
	if body == nil {
		body, _ = json.Marshal(struct {
			Message string `json:"message"`
		}{ce.Message})
	}
	out := []byte{eioMessage, '4'}
	if nsp != "/" {
		out = append(out, nsp...)
		out = append(out, ',')
	}
	return append(out, body...)
}
