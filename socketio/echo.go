package socketio

import "net/http"

// NewEchoEngine returns a bare Engine.IO v4 handler (no Socket.IO layer)
// that sends every message back to its sender. It exists to run the
// official engine.io protocol test suite against the same engine code the
// Server uses; applications want NewServer.
func NewEchoEngine(cfg Config) http.Handler {
	return newEngine(cfg, echoHandler{})
}

type echoHandler struct{}

func (echoHandler) onOpen(*session)          {}
func (echoHandler) onClose(*session, string) {}

func (echoHandler) onMessage(s *session, p enginePacket) error {
	if p.binary {
		return s.send(&Frame{bins: [][]byte{append([]byte(nil), p.data...)}})
	}
	text := make([]byte, 0, len(p.data)+1)
	text = append(text, eioMessage)
	return s.send(&Frame{text: append(text, p.data...)})
}
