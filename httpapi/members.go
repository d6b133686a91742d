package httpapi

import (
	"context"
	"net/http"

	"github.com/chatstate/chatstate"
)

// ChangeMembers is the membership change behind POST
// /v1/conversations/{id}/members (gateway.Gateway.ChangeMembers): it
// updates the members and appends the members entry, returning the
// conversation after the change and the entry (nil when nothing changed).
type ChangeMembers func(ctx context.Context, conversationID, actorID, requestID string, change chatstate.MembersChange) (chatstate.Conversation, *chatstate.Message, error)

func (s *Server) changeMembers(w http.ResponseWriter, r *http.Request) {
	if s.deps.ChangeMembers == nil {
		writeJSON(w, http.StatusNotImplemented, errorJSON(chatstate.Errorf(chatstate.EUNAVAILABLE, "membership changes not configured")))
		return
	}
	var req struct {
		Add       []string `json:"add"`
		Remove    []string `json:"remove"`
		ActorID   string   `json:"actorId"`
		RequestID string   `json:"requestId"`
	}
	if err := s.decode(w, r, &req); err != nil {
		s.error(w, r, err)
		return
	}
	if len(req.Add)+len(req.Remove) == 0 {
		s.error(w, r, chatstate.Errorf(chatstate.EINVALID, "add or remove is required"))
		return
	}
	c, entry, err := s.deps.ChangeMembers(r.Context(), r.PathValue("id"), req.ActorID, req.RequestID, chatstate.MembersChange{Added: req.Add, Removed: req.Remove})
	if err != nil {
		s.error(w, r, err)
		return
	}
	out := map[string]any{"id": c.ID, "members": c.Members}
	if entry != nil {
		out["entry"] = entry
	}
	writeJSON(w, http.StatusOK, out)
}
