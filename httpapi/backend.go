package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/chatstate/chatstate"
)

// Backend is the gateway side of the app-backend API (gateway.Gateway):
// sends on behalf of bots and the system, custom events to any device on
// any node, and presence.
type Backend interface {
	// SendAs validates, stores and publishes msg exactly as message:send
	// does; duplicate reports a resend of its (sender, clientMessageId).
	SendAs(ctx context.Context, msg chatstate.Message) (stored chatstate.Message, duplicate bool, err error)
	EmitToUser(ctx context.Context, userID, event string, data json.RawMessage) error
	EmitToConversation(ctx context.Context, conversationID, event string, data json.RawMessage) error
	PresenceOf(ctx context.Context, userIDs []string) (map[string]chatstate.PresenceView, error)
}

// ConversationReader reads a conversation as stored (the store).
type ConversationReader interface {
	Conversation(ctx context.Context, id string) (chatstate.Conversation, error)
}

func (s *Server) backendRoutes() {
	if s.deps.Backend != nil {
		s.mux.HandleFunc("POST /v1/conversations/{id}/messages", s.auth(s.postMessage))
		s.mux.HandleFunc("POST /v1/users/{id}/events", s.auth(s.postUserEvent))
		s.mux.HandleFunc("POST /v1/conversations/{id}/events", s.auth(s.postConversationEvent))
		s.mux.HandleFunc("GET /v1/presence", s.auth(s.presence))
	}
	if s.deps.ConversationReader != nil {
		s.mux.HandleFunc("GET /v1/conversations/{id}", s.auth(s.conversation))
	}
}

// postMessage answers 201 with the new message, or 200 with the original
// for a resend of the same (senderId, clientMessageId).
func (s *Server) postMessage(w http.ResponseWriter, r *http.Request) {
	var req struct {
		SenderID        string `json:"senderId"`
		ClientMessageID string `json:"clientMessageId"`
		Content         string `json:"content"`
		Type            string `json:"type"`
	}
	if err := s.decode(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	msg, dup, err := s.deps.Backend.SendAs(r.Context(), chatstate.Message{
		ConversationID: r.PathValue("id"), SenderID: req.SenderID, ClientMessageID: req.ClientMessageID,
		Content: req.Content, Type: req.Type,
	})
	if err != nil {
		s.error(w, r, err)
		return
	}
	status := http.StatusCreated
	if dup {
		status = http.StatusOK
	}
	writeJSON(w, status, map[string]any{"message": msg})
}

// conversation answers {id, members, createdAt, lastSeq}; lastSeq is the
// highest seq a client may be shown (docs/delivery.md), so syncing from it
// never skips a message.
func (s *Server) conversation(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c, err := s.deps.ConversationReader.Conversation(r.Context(), id)
	if err != nil {
		s.error(w, r, err)
		return
	}
	last, err := s.deps.Messages.LastSeq(r.Context(), id)
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": c.ID, "members": c.Members, "createdAt": c.CreatedAt, "lastSeq": last})
}

type eventRequest struct {
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
}

func (s *Server) postUserEvent(w http.ResponseWriter, r *http.Request) {
	s.emit(w, r, s.deps.Backend.EmitToUser)
}

func (s *Server) postConversationEvent(w http.ResponseWriter, r *http.Request) {
	s.emit(w, r, s.deps.Backend.EmitToConversation)
}

// emit answers 202: the event went out live to the devices connected now;
// it is not stored.
func (s *Server) emit(w http.ResponseWriter, r *http.Request, to func(ctx context.Context, id, event string, data json.RawMessage) error) {
	var req eventRequest
	if err := s.decode(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	if err := to(r.Context(), r.PathValue("id"), req.Event, req.Data); err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"event": req.Event})
}

// presence serves GET /v1/presence?userIds=a,b,c with presence:get's view.
func (s *Server) presence(w http.ResponseWriter, r *http.Request) {
	var ids []string
	if v := r.URL.Query().Get("userIds"); v != "" {
		ids = strings.Split(v, ",")
	}
	out, err := s.deps.Backend.PresenceOf(r.Context(), ids)
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"presence": out})
}
