package socketio

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gorilla/websocket"
)

// engineHandler is the layer above Engine.IO: the Socket.IO server, or the
// bare echo used to run the engine.io protocol suite. Both methods run with
// the session's readMu held, so they are serialised per session.
type engineHandler interface {
	onOpen(s *session)
	onMessage(s *session, p enginePacket) error
	onClose(s *session, reason string)
}

// Engine.IO error codes of the reference server's HTTP 400 replies.
const (
	errCodeUnknownTransport = 0
	errCodeUnknownSID       = 1
	errCodeBadMethod        = 2
	errCodeBadRequest       = 3
	errCodeForbidden        = 4
	errCodeBadVersion       = 5
)

var errMessages = [...]string{
	"Transport unknown",
	"Session ID unknown",
	"Bad handshake method",
	"Bad request",
	"Forbidden",
	"Unsupported protocol version",
}

// engine is the Engine.IO v4 server: sessions, transports, heartbeat.
type engine struct {
	cfg      Config
	h        engineHandler
	upgrader websocket.Upgrader
	origins  map[string]struct{}
	pathAlt  string // cfg.Path without its trailing slash

	mu       sync.Mutex
	sessions map[string]*session
	closed   bool
	// refusing: new sessions get 503 (StopAccepting); unlike closed, the
	// existing ones keep running.
	refusing atomic.Bool

	// dispatch tracks the goroutines that deliver onClose, so Close can
	// wait for every OnDisconnect to have run.
	dispatch sync.WaitGroup

	timers *timerQueue // every session's heartbeat, connect timeout and ExpireAt

	pollMu     sync.Mutex
	poller     *poller // made on the first websocket; nil: none (yet)
	pollFailed bool    // no poller on this system: goroutines read
	pollClosed bool    // close ran
}

// gorillaWritePool is never drawn from (gorilla writes nothing after the
// 101, which goes out through the hijacked HTTP writer); with a pool set
// gorilla allocates no write buffer up front.
var gorillaWritePool = &sync.Pool{}

func newEngine(cfg Config, h engineHandler) *engine {
	cfg = cfg.withDefaults()
	e := &engine{
		cfg:      cfg,
		h:        h,
		sessions: make(map[string]*session),
		pathAlt:  strings.TrimSuffix(cfg.Path, "/"),
		timers:   newTimerQueue(),
	}
	if len(cfg.AllowedOrigins) > 0 {
		e.origins = make(map[string]struct{}, len(cfg.AllowedOrigins))
		for _, o := range cfg.AllowedOrigins {
			e.origins[o] = struct{}{}
		}
	}
	e.upgrader = websocket.Upgrader{
		// gorilla answers the handshake only (its Conn is dropped right
		// after, see upgradeConn): a zero ReadBufferSize reuses the
		// hijacked HTTP reader instead of allocating one.
		WriteBufferSize: 256,
		WriteBufferPool: gorillaWritePool,
		CheckOrigin:     func(r *http.Request) bool { return e.originAllowed(r.Header.Get("Origin")) },
		// Errors are answered by us (the reference replies 400 with JSON).
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			writeError(w, status, errCodeBadRequest)
		},
	}
	return e
}

func (e *engine) originAllowed(origin string) bool {
	if e.origins == nil || origin == "" {
		return true
	}
	_, ok := e.origins[origin]
	return ok
}

func writeError(w http.ResponseWriter, status, code int) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{code, errMessages[code]})
	_, _ = w.Write(b)
}

// setCORS adds the CORS headers of an allowed origin to a polling reply.
func (e *engine) setCORS(w http.ResponseWriter, r *http.Request) {
	if o := r.Header.Get("Origin"); o != "" {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", o)
		h.Set("Access-Control-Allow-Credentials", "true")
		h.Add("Vary", "Origin")
	}
}

func (e *engine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != e.cfg.Path && r.URL.Path != e.pathAlt {
		http.NotFound(w, r)
		return
	}
	if !e.originAllowed(r.Header.Get("Origin")) {
		writeError(w, http.StatusForbidden, errCodeForbidden)
		return
	}
	if r.Method == http.MethodOptions {
		e.setCORS(w, r)
		h := w.Header()
		h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
		if rh := r.Header.Get("Access-Control-Request-Headers"); rh != "" {
			h.Set("Access-Control-Allow-Headers", rh)
		}
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	q := r.URL.Query()
	if q.Get("EIO") != "4" {
		writeError(w, http.StatusBadRequest, errCodeBadVersion)
		return
	}
	transport := q.Get("transport")
	if transport != "polling" && transport != "websocket" {
		writeError(w, http.StatusBadRequest, errCodeUnknownTransport)
		return
	}
	sid := q.Get("sid")
	if transport == "websocket" {
		if !websocket.IsWebSocketUpgrade(r) || r.Method != http.MethodGet {
			writeError(w, http.StatusBadRequest, errCodeBadRequest)
			return
		}
		if sid == "" {
			e.openWebsocket(w, r)
		} else {
			e.upgrade(w, r, sid)
		}
		return
	}
	e.setCORS(w, r)
	if sid == "" {
		if r.Method != http.MethodGet {
			writeError(w, http.StatusBadRequest, errCodeBadMethod)
			return
		}
		e.openPolling(w, r)
		return
	}
	s := e.lookup(sid)
	if s == nil {
		writeError(w, http.StatusBadRequest, errCodeUnknownSID)
		return
	}
	switch r.Method {
	case http.MethodGet:
		s.handlePoll(w, r)
	case http.MethodPost:
		s.handlePost(w, r)
	default:
		writeError(w, http.StatusBadRequest, errCodeBadMethod)
	}
}

func (e *engine) lookup(sid string) *session {
	e.mu.Lock()
	s := e.sessions[sid]
	e.mu.Unlock()
	return s
}

// register adds s unless the engine is shutting down.
func (e *engine) register(s *session) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	e.sessions[s.sid] = s
	return true
}

func (e *engine) unregister(s *session) {
	e.mu.Lock()
	if e.sessions[s.sid] == s {
		delete(e.sessions, s.sid)
	}
	e.mu.Unlock()
}

// close shuts every session and waits for their onClose to have run or ctx
// to end.
func (e *engine) close(ctx context.Context) {
	e.mu.Lock()
	e.closed = true
	all := make([]*session, 0, len(e.sessions))
	for _, s := range e.sessions {
		all = append(all, s)
	}
	e.mu.Unlock()
	for _, s := range all {
		s.close(ReasonServerShutdown, closeServer)
	}
	done := make(chan struct{})
	go func() { e.dispatch.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	e.pollMu.Lock()
	e.pollClosed = true
	p := e.poller
	e.pollMu.Unlock()
	if p != nil {
		p.close()
	}
}

// getPoller returns the engine's poller, making it on first use; nil when
// the system has none or the engine is closed.
func (e *engine) getPoller() *poller {
	e.pollMu.Lock()
	defer e.pollMu.Unlock()
	if e.pollClosed || e.pollFailed {
		return nil
	}
	if e.poller == nil {
		p, err := newPoller()
		if err != nil {
			e.pollFailed = true
			e.cfg.Logger.Warn("socketio: websocket connections are read by a goroutine each", "err", err)
			return nil
		}
		e.poller = p
	}
	return e.poller
}

// currentPoller returns the poller if one was made.
func (e *engine) currentPoller() *poller {
	e.pollMu.Lock()
	defer e.pollMu.Unlock()
	return e.poller
}

// upgradeConn answers a websocket handshake (gorilla checks it and writes
// the 101) and takes over the connection: gorilla's Conn, with its buffers,
// is dropped, and has read nothing past the handshake.
func (e *engine) upgradeConn(w http.ResponseWriter, r *http.Request) (*wsConn, error) {
	conn, err := e.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return nil, err // the upgrader has replied
	}
	return newWSConn(conn.NetConn(), e.cfg.MaxPayload), nil
}

func (e *engine) handshakeFrame(sid string, upgrades bool) *Frame {
	b := make([]byte, 0, 128)
	b = append(b, eioOpen)
	b = append(b, `{"sid":"`...)
	b = append(b, sid...)
	if upgrades {
		b = append(b, `","upgrades":["websocket"],"pingInterval":`...)
	} else {
		b = append(b, `","upgrades":[],"pingInterval":`...)
	}
	b = strconv.AppendInt(b, e.cfg.PingInterval.Milliseconds(), 10)
	b = append(b, `,"pingTimeout":`...)
	b = strconv.AppendInt(b, e.cfg.PingTimeout.Milliseconds(), 10)
	b = append(b, `,"maxPayload":`...)
	b = strconv.AppendInt(b, int64(e.cfg.MaxPayload), 10)
	b = append(b, '}')
	return newFrame(b)
}

// refuse answers a handshake with 503 while the server stops accepting, so
// the client (or a load balancer) retries elsewhere.
func (e *engine) refuse(w http.ResponseWriter) bool {
	if !e.refusing.Load() {
		return false
	}
	w.Header().Set("Retry-After", "1")
	http.Error(w, "shutting down", http.StatusServiceUnavailable)
	return true
}

func (e *engine) openPolling(w http.ResponseWriter, r *http.Request) {
	if e.refuse(w) {
		return
	}
	s := newSession(e, newID(), r, transportPolling)
	if !e.register(s) {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	s.start()
	w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
	_, _ = w.Write(e.handshakeFrame(s.sid, true).text)
	s.lockedOpen()
}

func (e *engine) openWebsocket(w http.ResponseWriter, r *http.Request) {
	if e.refuse(w) {
		return
	}
	conn, err := e.upgradeConn(w, r)
	if err != nil {
		return
	}
	s := newSession(e, newID(), r, transportWebsocket)
	s.ws = conn
	if !e.register(s) {
		_ = conn.nc.Close()
		return
	}
	_ = s.send(e.handshakeFrame(s.sid, false))
	s.start()
	s.lockedOpen()
	s.watch(conn)
}

// newID returns 20 URL-safe random characters (120 bits).
func newID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
