package httpapi

import (
	"context"
	"net/http"
	"strconv"

	"github.com/chatstate/chatstate"
)

// SessionLog reads users' sessions and security logs (the cache).
type SessionLog interface {
	Sessions(ctx context.Context, userID string) ([]chatstate.Session, error)
	SecurityEvents(ctx context.Context, userID string, limit int) ([]chatstate.SecurityEvent, error)
}

// maxSecurityEvents caps GET /v1/users/{id}/security-events.
const maxSecurityEvents = 100

func (s *Server) sessionRoutes() {
	if s.deps.Sessions == nil {
		return
	}
	s.mux.HandleFunc("GET /v1/users/{id}/sessions", s.auth(s.listSessions))
	s.mux.HandleFunc("GET /v1/users/{id}/security-events", s.auth(s.securityEvents))
	if s.deps.RevokeSession != nil {
		s.mux.HandleFunc("DELETE /v1/users/{id}/sessions/{deviceId}", s.auth(s.revokeSession))
	}
}

// sessionView is a session as the API shows it.
type sessionView struct {
	DeviceID     string `json:"deviceId"`
	CreatedAt    int64  `json:"createdAt"`
	LastActivity int64  `json:"lastActivity"`
	ExpiresAt    int64  `json:"expiresAt"`
	IP           string `json:"ip,omitempty"`
	UserAgent    string `json:"userAgent,omitempty"`
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request) {
	list, err := s.deps.Sessions.Sessions(r.Context(), r.PathValue("id"))
	if err != nil {
		s.error(w, r, err)
		return
	}
	out := make([]sessionView, 0, len(list))
	for _, ss := range list {
		out = append(out, sessionView{DeviceID: ss.DeviceID, CreatedAt: ss.CreatedAt, LastActivity: ss.LastActivity,
			ExpiresAt: ss.ExpiresAt, IP: ss.Data["ip"], UserAgent: ss.Data["userAgent"]})
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

func (s *Server) revokeSession(w http.ResponseWriter, r *http.Request) {
	if err := s.deps.RevokeSession(r.Context(), r.PathValue("id"), r.PathValue("deviceId")); err != nil {
		s.error(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) securityEvents(w http.ResponseWriter, r *http.Request) {
	limit := maxSecurityEvents
	if v := r.URL.Query().Get("limit"); v != "" {
		l, err := strconv.Atoi(v)
		if err != nil || l < 1 || l > maxSecurityEvents {
			s.error(w, r, chatstate.Errorf(chatstate.EINVALID, "limit must be 1..%d", maxSecurityEvents))
			return
		}
		limit = l
	}
	list, err := s.deps.Sessions.SecurityEvents(r.Context(), r.PathValue("id"), limit)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if list == nil {
		list = []chatstate.SecurityEvent{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": list})
}
