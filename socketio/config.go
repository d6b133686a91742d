// Package socketio is a small Engine.IO v4 / Socket.IO v5 server. It speaks
// the protocol of socket.io-client 4.x (websocket-first, polling-first with
// upgrade, acks both ways, binary attachments) on the main namespace "/"
// only, and knows nothing about chat. github.com/gorilla/websocket answers
// the websocket handshake; the frames are read and written here, so that an
// idle connection holds no goroutine, timer or buffer.
//
// Concurrency: the handlers registered with OnConnect, OnEvent and
// OnDisconnect run sequentially for one connection, in the goroutine that
// reads that connection (a reader started when the websocket is readable,
// or the polling POST request). A slow handler delays that connection's next packets and pongs,
// so handlers must hand slow work to other goroutines. Emit, Send,
// EmitWithAck and Disconnect are safe from any goroutine; EmitWithAck must not
// be awaited from a handler of the same connection (the ack could never be
// read), so call it from another goroutine.
package socketio

import (
	"errors"
	"log/slog"
	"time"
)

// Config configures a Server. Every zero value means the documented default.
type Config struct {
	// Path is the mount path, zero means "/socket.io/".
	Path string
	// PingInterval and PingTimeout drive the heartbeat: zero means 25s / 20s.
	PingInterval, PingTimeout time.Duration
	// ConnectTimeout closes an engine connection that sends no socket.io
	// CONNECT in time; zero means 45s.
	ConnectTimeout time.Duration
	// MaxPayload bounds one HTTP body and one websocket message, zero means
	// 1e6 bytes (socket.io's maxHttpBufferSize).
	MaxPayload int
	// MaxAttachments bounds the binary attachments of one packet, zero
	// means 10.
	MaxAttachments int
	// SendQueue bounds the frames queued for one connection, zero means 256.
	// A connection whose queue is full is disconnected ("send queue
	// overflow") rather than buffered without bound.
	SendQueue int
	// AckTimeout bounds EmitWithAck when its context has no earlier
	// deadline, zero means 10s.
	AckTimeout time.Duration
	// AllowedOrigins lists the exact Origin values accepted for CORS and
	// websocket upgrades; empty means any origin.
	AllowedOrigins []string
	// Logger receives connection-level diagnostics, nil means slog.Default().
	Logger *slog.Logger

	// WriteTimeout bounds one websocket write, zero means 10s.
	WriteTimeout time.Duration
	// MaxPacketsPerPayload bounds the packets of one polling POST body,
	// zero means 256.
	MaxPacketsPerPayload int
	// MaxEventNameLen bounds an event name in bytes, zero means 256.
	MaxEventNameLen int
	// MaxDepth bounds the JSON nesting of a packet, zero means 32.
	MaxDepth int
}

func (c Config) withDefaults() Config {
	if c.Path == "" {
		c.Path = "/socket.io/"
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 25 * time.Second
	}
	if c.PingTimeout <= 0 {
		c.PingTimeout = 20 * time.Second
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 45 * time.Second
	}
	if c.MaxPayload <= 0 {
		c.MaxPayload = 1e6
	}
	if c.MaxAttachments <= 0 {
		c.MaxAttachments = 10
	}
	if c.SendQueue <= 0 {
		c.SendQueue = 256
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.MaxPacketsPerPayload <= 0 {
		c.MaxPacketsPerPayload = 256
	}
	if c.MaxEventNameLen <= 0 {
		c.MaxEventNameLen = 256
	}
	if c.MaxDepth <= 0 {
		c.MaxDepth = 32
	}
	return c
}

// Errors returned by Conn methods.
var (
	// ErrClosed: the connection is already disconnected.
	ErrClosed = errors.New("socketio: connection closed")
	// ErrQueueFull: the send queue overflowed; the connection has been
	// disconnected with reason "send queue overflow".
	ErrQueueFull = errors.New("socketio: send queue full, connection closed")
	// ErrAckTimeout: EmitWithAck got no ack within AckTimeout.
	ErrAckTimeout = errors.New("socketio: ack timeout")
)

// ConnectError refuses a connection from OnConnect; it is sent to the client
// as CONNECT_ERROR {"message": Message, "data": Data}.
type ConnectError struct {
	Message string
	Data    any
}

func (e *ConnectError) Error() string { return "socketio: connect refused: " + e.Message }

// Disconnect reasons, as socket.io names them.
const (
	ReasonClientDisconnect = "client namespace disconnect"
	ReasonServerDisconnect = "server namespace disconnect"
	ReasonTransportClose   = "transport close"
	ReasonTransportError   = "transport error"
	ReasonPingTimeout      = "ping timeout"
	ReasonParseError       = "parse error"
	ReasonServerShutdown   = "server shutting down"
	ReasonQueueOverflow    = "send queue overflow"
	ReasonForcedClose      = "forced close"
)
