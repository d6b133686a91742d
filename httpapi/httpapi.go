// Package httpapi serves chatstate's HTTP API: the service API that backends
// call (conversations, friends, messages, custom events, presence), the
// design's /redis/* endpoints and the health probes.
package httpapi

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/messaging"
)

// Config of the HTTP API.
type Config struct {
	// APIKey guards the service API and /redis/stats, /redis/online-users
	// and /redis/cleanup (header "Authorization: Bearer <key>"). Empty
	// means those routes answer 401 to everyone.
	APIKey string
	// MaxBodyBytes caps request bodies; zero means 1 MiB.
	MaxBodyBytes int64
	// RequestTimeout bounds a request's work: when Redis or the store does
	// not answer within it, the reply is 503 unavailable with Retry-After
	// rather than a hang. Zero means 5s.
	RequestTimeout time.Duration
	// HealthTimeout bounds the PING of /redis/health and /readyz, so a hung
	// Redis fails the probe instead of stalling it; zero means 2s.
	HealthTimeout time.Duration
	Logger        *slog.Logger
}

// Deps are the services behind the API. Nil optional funcs answer 501.
type Deps struct {
	Directory chatstate.Directory
	State     chatstate.RealTimeState
	Messages  Messages
	// Ping checks Redis (PING); used by /redis/health and /readyz.
	Ping func(ctx context.Context) error
	// Draining reports that the node is shutting down (gateway.Draining):
	// /readyz then fails so load balancers stop sending clients. Nil means
	// never.
	Draining func() bool
	// Stats returns Redis and service statistics for /redis/stats.
	Stats func(ctx context.Context) (any, error)
	// Cleanup runs the manual cleanup for POST /redis/cleanup.
	Cleanup func(ctx context.Context) (any, error)
	// Metrics serves GET /metrics when set.
	Metrics http.Handler
	// Devices and Notifications serve the push routes (push.go); nil
	// leaves them out.
	Devices       Devices
	Notifications Notifications
	// Sessions serves the session and security-log routes (sessions.go);
	// nil leaves them out. RevokeSession (gateway.RevokeSession) deletes a
	// session and disconnects its device on every node; nil leaves out
	// DELETE /v1/users/{id}/sessions/{deviceId}.
	Sessions      SessionLog
	RevokeSession func(ctx context.Context, userID, deviceID string) error
	// Backend serves the app-backend routes (backend.go): sends, custom
	// events and presence; nil leaves them out.
	Backend Backend
	// ConversationReader serves GET /v1/conversations/{id}; nil leaves it
	// out.
	ConversationReader ConversationReader
	// Conversations serves GET /v1/users/{id}/conversations; nil answers
	// 501.
	Conversations Conversations
	// ChangeMembers serves POST /v1/conversations/{id}/members (members.go);
	// nil answers 501.
	ChangeMembers ChangeMembers
}

// Conversations lists a user's conversations (messaging.Service).
type Conversations interface {
	Conversations(ctx context.Context, user string, limit int, cursor string) (messaging.ConversationPage, error)
	ConversationCreated(ctx context.Context, c chatstate.Conversation) error
}

// Messages reads history: cache first, then the store (messaging.Service).
type Messages interface {
	Sync(ctx context.Context, conversationID string, afterSeq int64, limit int) ([]chatstate.Message, error)
	Before(ctx context.Context, conversationID string, beforeSeq int64, limit int) ([]chatstate.Message, error)
	// LastSeq is the highest seq a client may be shown.
	LastSeq(ctx context.Context, conversationID string) (int64, error)
}

// Server is the API's http.Handler.
type Server struct {
	cfg  Config
	deps Deps
	mux  *http.ServeMux
}

// New builds the API.
func New(cfg Config, deps Deps) *Server {
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	if cfg.HealthTimeout == 0 {
		cfg.HealthTimeout = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, deps: deps, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.ready)
	s.mux.HandleFunc("GET /redis/health", s.redisHealth)
	s.mux.HandleFunc("GET /redis/stats", s.auth(s.redisStats))
	s.mux.HandleFunc("GET /redis/online-users", s.auth(s.onlineUsers))
	s.mux.HandleFunc("POST /redis/cleanup", s.auth(s.cleanup))
	s.mux.HandleFunc("POST /v1/conversations", s.auth(s.createConversation))
	s.mux.HandleFunc("PUT /v1/users/{id}/friends", s.auth(s.setFriends))
	s.mux.HandleFunc("GET /v1/conversations/{id}/messages", s.auth(s.messages))
	s.mux.HandleFunc("GET /v1/users/{id}/conversations", s.auth(s.userConversations))
	s.mux.HandleFunc("POST /v1/conversations/{id}/members", s.auth(s.changeMembers))
	s.pushRoutes()
	s.sessionRoutes()
	s.backendRoutes()
	if deps.Metrics != nil {
		s.mux.Handle("GET /metrics", deps.Metrics)
	}
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	s.mux.ServeHTTP(w, r.WithContext(ctx))
}

func (s *Server) auth(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || s.cfg.APIKey == "" || subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.APIKey)) != 1 {
			s.error(w, r, chatstate.Errorf(chatstate.EUNAUTHORIZED, "missing or wrong API key"))
			return
		}
		next(w, r)
	}
}

// ready fails while the node drains, before anything else stops, so a load
// balancer moves new connections away first.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if s.deps.Draining != nil && s.deps.Draining() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "draining"})
		return
	}
	s.redisHealth(w, r)
}

func (s *Server) redisHealth(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.HealthTimeout)
	defer cancel()
	if err := s.deps.Ping(ctx); err != nil {
		s.cfg.Logger.Warn("redis health check failed", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "error", "error": "redis unreachable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "latencyMs": float64(time.Since(start).Microseconds()) / 1000})
}

func (s *Server) redisStats(w http.ResponseWriter, r *http.Request) {
	if s.deps.Stats == nil {
		writeJSON(w, http.StatusNotImplemented, errorJSON(chatstate.Errorf(chatstate.EUNAVAILABLE, "stats not configured")))
		return
	}
	stats, err := s.deps.Stats(r.Context())
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, stats)
}

func (s *Server) cleanup(w http.ResponseWriter, r *http.Request) {
	if s.deps.Cleanup == nil {
		writeJSON(w, http.StatusNotImplemented, errorJSON(chatstate.Errorf(chatstate.EUNAVAILABLE, "cleanup not configured")))
		return
	}
	res, err := s.deps.Cleanup(r.Context())
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) onlineUsers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var cursor uint64
	limit := 100
	if v := q.Get("cursor"); v != "" {
		c, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			s.error(w, r, chatstate.Errorf(chatstate.EINVALID, "cursor must be an unsigned integer"))
			return
		}
		cursor = c
	}
	if v := q.Get("limit"); v != "" {
		l, err := strconv.Atoi(v)
		if err != nil || l < 1 || l > 1000 {
			s.error(w, r, chatstate.Errorf(chatstate.EINVALID, "limit must be 1..1000"))
			return
		}
		limit = l
	}
	page, err := s.deps.State.OnlineUsers(r.Context(), cursor, limit)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if page.UserIDs == nil {
		page.UserIDs = []string{}
	}
	// The cursor is a string so JavaScript clients keep all 64 bits.
	writeJSON(w, http.StatusOK, map[string]any{"users": page.UserIDs, "cursor": strconv.FormatUint(page.Cursor, 10)})
}

func (s *Server) createConversation(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID      string   `json:"id"`
		Members []string `json:"members"`
	}
	if err := s.decode(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	c, err := s.deps.Directory.CreateConversation(r.Context(), chatstate.Conversation{ID: req.ID, Members: req.Members})
	if err != nil {
		s.error(w, r, err)
		return
	}
	if s.deps.Conversations != nil {
		if err := s.deps.Conversations.ConversationCreated(r.Context(), c); err != nil {
			// Created: the members' cached lists show it from its first
			// message or their next refill.
			s.cfg.Logger.Warn("new conversation not added to cached lists", "conversation", c.ID, "err", err)
		}
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": c.ID, "members": c.Members})
}

func (s *Server) setFriends(w http.ResponseWriter, r *http.Request) {
	userID := r.PathValue("id")
	var req struct {
		Friends []string `json:"friends"`
	}
	if err := s.decode(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	if req.Friends == nil {
		s.error(w, r, chatstate.Errorf(chatstate.EINVALID, "friends is required (use [] to clear)"))
		return
	}
	if err := s.deps.Directory.SetFriends(r.Context(), userID, req.Friends); err != nil {
		s.error(w, r, err)
		return
	}
	friends, err := s.deps.Directory.Friends(r.Context(), userID)
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"userId": userID, "friends": friends})
}

// messages serves history: afterSeq pages forward (catch-up), beforeSeq
// pages back (older history); both ascending by seq.
func (s *Server) messages(w http.ResponseWriter, r *http.Request) {
	conv := r.PathValue("id")
	if err := chatstate.ValidateID("conversationId", conv); err != nil {
		s.error(w, r, err)
		return
	}
	q := r.URL.Query()
	num := func(name string, def, max int64) (int64, error) {
		v := q.Get(name)
		if v == "" {
			return def, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 || n > max {
			return 0, chatstate.Errorf(chatstate.EINVALID, "%s must be an integer in 0..%d", name, max)
		}
		return n, nil
	}
	after, err := num("afterSeq", 0, 1<<53)
	before, err2 := num("beforeSeq", 0, 1<<53)
	limit, err3 := num("limit", 50, 100)
	for _, e := range []error{err2, err3} {
		if err == nil {
			err = e
		}
	}
	if err != nil {
		s.error(w, r, err)
		return
	}
	if q.Get("afterSeq") != "" && q.Get("beforeSeq") != "" {
		s.error(w, r, chatstate.Errorf(chatstate.EINVALID, "give afterSeq or beforeSeq, not both"))
		return
	}
	if limit == 0 {
		limit = 50
	}
	if _, err := s.deps.Directory.Members(r.Context(), conv); err != nil {
		s.error(w, r, err)
		return
	}
	var msgs []chatstate.Message
	if q.Get("beforeSeq") != "" {
		msgs, err = s.deps.Messages.Before(r.Context(), conv, before, int(limit))
	} else {
		msgs, err = s.deps.Messages.Sync(r.Context(), conv, after, int(limit))
	}
	if err != nil {
		s.error(w, r, err)
		return
	}
	if msgs == nil {
		msgs = []chatstate.Message{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": msgs})
}

// userConversations is the user's conversation list, most recent activity
// first: ?limit= (default 20, at most 100) and ?cursor= from the previous
// page.
func (s *Server) userConversations(w http.ResponseWriter, r *http.Request) {
	if s.deps.Conversations == nil {
		writeJSON(w, http.StatusNotImplemented, errorJSON(chatstate.Errorf(chatstate.EUNAVAILABLE, "conversation lists not configured")))
		return
	}
	user := r.PathValue("id")
	if err := chatstate.ValidateID("userId", user); err != nil {
		s.error(w, r, err)
		return
	}
	q := r.URL.Query()
	limit := 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			s.error(w, r, chatstate.Errorf(chatstate.EINVALID, "limit must be a non-negative integer"))
			return
		}
		limit = n
	}
	page, err := s.deps.Conversations.Conversations(r.Context(), user, limit, q.Get("cursor"))
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page.Reply())
}

func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) error {
	return DecodeBody(w, r, s.cfg.MaxBodyBytes, v)
}

// DecodeBody decodes a request body of at most max bytes holding one JSON
// object into v: too large is too_large, anything else malformed invalid.
func DecodeBody(w http.ResponseWriter, r *http.Request, max int64, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, max))
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return chatstate.Errorf(chatstate.ETOOLARGE, "request body is larger than %d bytes", max)
		}
		return chatstate.Errorf(chatstate.EINVALID, "request body must be a JSON object with the documented fields")
	}
	if _, err := dec.Token(); err != io.EOF {
		return chatstate.Errorf(chatstate.EINVALID, "request body must hold one JSON object")
	}
	return nil
}

var statusOf = map[string]int{
	chatstate.EINVALID:      http.StatusBadRequest,
	chatstate.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	chatstate.ENOTFOUND:     http.StatusNotFound,
	chatstate.EFORBIDDEN:    http.StatusForbidden,
	chatstate.EUNAUTHORIZED: http.StatusUnauthorized,
	chatstate.ECONFLICT:     http.StatusConflict,
	chatstate.ERATELIMITED:  http.StatusTooManyRequests,
	chatstate.EUNAVAILABLE:  http.StatusServiceUnavailable,
	chatstate.EINTERNAL:     http.StatusInternalServerError,
}

// error logs an internal error and writes err (WriteError).
func (s *Server) error(w http.ResponseWriter, r *http.Request, err error) {
	err = chatstate.Classify(err)
	if chatstate.ErrorCode(err) == chatstate.EINTERNAL {
		s.cfg.Logger.Error("http request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	WriteError(w, err)
}

// WriteError writes err as the API's JSON error body with its HTTP status.
// An outage that no package mapped (chatstate.Classify) is 503 like the
// mapped ones, and every retryable error carries Retry-After (whole
// seconds, rounded up). Handlers served next to the API (package web)
// answer errors with it too.
func WriteError(w http.ResponseWriter, err error) {
	err = chatstate.Classify(err)
	code := chatstate.ErrorCode(err)
	var e *chatstate.Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(e.RetryAfter.Seconds()+0.999)))
	}
	writeJSON(w, statusOf[code], errorJSON(err))
}

func errorJSON(err error) map[string]any {
	return map[string]any{"error": chatstate.Payload(err)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
