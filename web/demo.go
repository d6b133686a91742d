package web

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/httpapi"
)

// The /demo/ API (docs/demo.md). A demo user proves who it is with the
// same token its socket connects with (Authorization: Bearer <token>); the
// operator's API key is never in the page.

// EventConversation is the custom event both members of a conversation
// started from the demo page receive, so their other pages refresh their
// conversation list and friends.
const EventConversation = "demo:conversation"

var (
	errNotDevMint = chatstate.Errorf(chatstate.EFORBIDDEN,
		"the server mints tokens only in development mode: sign in with a token from your identity service (docs/demo.md)")
	errNoSecret = chatstate.Errorf(chatstate.EFORBIDDEN,
		"no CHATSTATE_JWT_SECRET to sign tokens with (only an RS256 public key is set): sign in with a token instead")
	errNotDevStart = chatstate.Errorf(chatstate.EFORBIDDEN,
		"the demo starts conversations only in development mode: your app backend creates them (POST /v1/conversations, PUT /v1/users/{id}/friends)")
	errDemoOff = chatstate.Errorf(chatstate.ENOTFOUND, "the demo is off: set CHATSTATE_DEMO=1 (docs/demo.md)")
)

func (h *Handler) demoRoutes() {
	if !h.cfg.Demo {
		h.mux.HandleFunc("/demo/", func(w http.ResponseWriter, r *http.Request) { httpapi.WriteError(w, errDemoOff) })
		return
	}
	h.mux.HandleFunc("GET /demo/config", h.demoConfig)
	h.mux.HandleFunc("POST /demo/token", h.timed(h.mintToken))
	h.mux.HandleFunc("GET /demo/friends", h.timed(h.user(h.friends)))
	h.mux.HandleFunc("POST /demo/conversations", h.timed(h.user(h.startConversation)))
	h.mux.HandleFunc("/demo/", func(w http.ResponseWriter, r *http.Request) {
		httpapi.WriteError(w, chatstate.Errorf(chatstate.ENOTFOUND, "no demo route %s %s", r.Method, r.URL.Path))
	})
}

// timed bounds a request's work, as the API does.
func (h *Handler) timed(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), h.cfg.RequestTimeout)
		defer cancel()
		next(w, r.WithContext(ctx))
	}
}

// userHandler is a handler for a signed-in demo user.
type userHandler func(w http.ResponseWriter, r *http.Request, userID string)

// user verifies the request's bearer token as a client token.
func (h *Handler) user(next userHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || h.deps.Verify == nil {
			httpapi.WriteError(w, chatstate.Errorf(chatstate.EUNAUTHORIZED, "send the client token as Authorization: Bearer <token>"))
			return
		}
		userID, err := h.deps.Verify(token)
		if err != nil {
			httpapi.WriteError(w, chatstate.Errorf(chatstate.EUNAUTHORIZED, "token refused: %v", err))
			return
		}
		next(w, r, userID)
	}
}

// demoConfig tells the page which sign-in to offer.
func (h *Handler) demoConfig(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"development":         h.cfg.Development,
		"mintsTokens":         h.cfg.Development && h.deps.Mint != nil,
		"startsConversations": h.cfg.Development,
	})
}

// mintToken is POST /demo/token {userId}: development mode only.
func (h *Handler) mintToken(w http.ResponseWriter, r *http.Request) {
	switch {
	case !h.cfg.Development:
		httpapi.WriteError(w, errNotDevMint)
		return
	case h.deps.Mint == nil:
		httpapi.WriteError(w, errNoSecret)
		return
	}
	var req struct {
		UserID string `json:"userId"`
	}
	if err := h.decode(w, r, &req); err != nil {
		httpapi.WriteError(w, err)
		return
	}
	if err := chatstate.ValidateID("userId", req.UserID); err != nil {
		httpapi.WriteError(w, err)
		return
	}
	token, exp, err := h.deps.Mint(req.UserID)
	if err != nil {
		httpapi.WriteError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"userId": req.UserID, "token": token, "expiresAt": exp.UnixMilli()})
}

// friends is GET /demo/friends: the signed-in user's friend list.
func (h *Handler) friends(w http.ResponseWriter, r *http.Request, userID string) {
	friends, err := h.deps.Directory.Friends(r.Context(), userID)
	if err != nil {
		httpapi.WriteError(w, err)
		return
	}
	if friends == nil {
		friends = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"userId": userID, "friends": friends})
}

// startConversation is POST /demo/conversations {with}: development mode
// only. It creates the one-to-one conversation of the two users (or finds
// it: its id is derived from the pair) and makes them friends of each
// other, so each sees the other's presence.
func (h *Handler) startConversation(w http.ResponseWriter, r *http.Request, userID string) {
	if !h.cfg.Development {
		httpapi.WriteError(w, errNotDevStart)
		return
	}
	var req struct {
		With string `json:"with"`
	}
	if err := h.decode(w, r, &req); err != nil {
		httpapi.WriteError(w, err)
		return
	}
	if err := chatstate.ValidateID("with", req.With); err != nil {
		httpapi.WriteError(w, err)
		return
	}
	if req.With == userID {
		httpapi.WriteError(w, chatstate.Errorf(chatstate.EINVALID, "start a conversation with someone else"))
		return
	}
	ctx := r.Context()
	c, created, err := h.pairConversation(ctx, userID, req.With)
	if err != nil {
		httpapi.WriteError(w, err)
		return
	}
	for _, pair := range [][2]string{{userID, req.With}, {req.With, userID}} {
		if err := h.befriend(ctx, pair[0], pair[1]); err != nil {
			httpapi.WriteError(w, err)
			return
		}
	}
	if h.deps.EmitToUser != nil {
		data, _ := json.Marshal(map[string]any{"conversationId": c.ID, "members": c.Members, "by": userID})
		for _, u := range []string{req.With, userID} {
			if err := h.deps.EmitToUser(ctx, u, EventConversation, data); err != nil {
				// The page also refreshes on the first message:new of a
				// conversation it does not know.
				h.cfg.Logger.Warn("demo: conversation event not sent", "user", u, "err", err)
			}
		}
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, map[string]any{"conversation": map[string]any{"id": c.ID, "members": c.Members}, "created": created})
}

// pairConversation creates the conversation of a and b, or returns it
// when it exists.
func (h *Handler) pairConversation(ctx context.Context, a, b string) (chatstate.Conversation, bool, error) {
	id := PairID(a, b)
	c, err := h.deps.Directory.CreateConversation(ctx, chatstate.Conversation{ID: id, Members: []string{a, b}})
	if err == nil {
		if h.deps.ConversationCreated != nil {
			if err := h.deps.ConversationCreated(ctx, c); err != nil {
				h.cfg.Logger.Warn("demo: new conversation not added to cached lists", "conversation", id, "err", err)
			}
		}
		return c, true, nil
	}
	if chatstate.ErrorCode(err) != chatstate.ECONFLICT {
		return c, false, err
	}
	members, err := h.deps.Directory.Members(ctx, id)
	if err != nil {
		return c, false, err
	}
	if !slices.Contains(members, a) || !slices.Contains(members, b) {
		// Someone's app backend took the id, or a member was removed.
		return c, false, chatstate.Errorf(chatstate.ECONFLICT, "conversation %s exists without both of you", id)
	}
	return chatstate.Conversation{ID: id, Members: members}, false, nil
}

// PairID is the id of the demo's conversation between a and b, the same
// whoever starts it: a hash, because user ids may hold the separator any
// readable form would use.
func PairID(a, b string) string {
	if b < a {
		a, b = b, a
	}
	sum := sha256.Sum256([]byte(a + "\x00" + b))
	return "dm-" + hex.EncodeToString(sum[:16])
}

// befriend adds friend to user's list. Two demo requests changing one
// list at once can lose one addition (read, then write); starting the
// conversation again adds it.
func (h *Handler) befriend(ctx context.Context, user, friend string) error {
	friends, err := h.deps.Directory.Friends(ctx, user)
	if err != nil || slices.Contains(friends, friend) {
		return err
	}
	return h.deps.Directory.SetFriends(ctx, user, append(slices.Clone(friends), friend))
}

func (h *Handler) decode(w http.ResponseWriter, r *http.Request, v any) error {
	return httpapi.DecodeBody(w, r, h.cfg.MaxBodyBytes, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
