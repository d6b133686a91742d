package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/luascript"
	"github.com/chatstate/chatstate/socketio"
)

// Handlers run one at a time per socket (in its read loop), so one client's
// sends are processed in the order it emitted them.
func (g *Gateway) onEvent(c *socketio.Conn, ev *socketio.Event) {
	cl, ok := c.Data().(*client)
	if !ok {
		return
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.EventTimeout)
	defer cancel()
	var (
		reply map[string]any
		err   error
		limit = "messages" // which limit refused it, for the security log
	)
	ok, wait := cl.events.take(time.Now(), g.cfg.EventRate, g.cfg.EventBurst)
	if ok {
		reply, err = g.dispatch(ctx, cl, ev)
		g.holdAck(ctx, cl, ev)
	} else {
		err = &chatstate.Error{Code: chatstate.ERATELIMITED, Message: "too many events on this connection, slow down", RetryAfter: wait}
		limit = "events"
	}
	// After the ack, so neither delays it; both are throttled.
	defer func() {
		limited := chatstate.ErrorCode(err) == chatstate.ERATELIMITED
		if !limited && (!ok || !g.sessionDue(cl)) {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), g.cfg.EventTimeout)
		defer cancel()
		if limited {
			g.logRateLimited(ctx, cl, ev.Name, limit)
		}
		if ok {
			g.touchSession(ctx, cl, false)
		}
	}()
	// Whatever a handler returns that is an outage (a backend error no
	// state package mapped, or EventTimeout passing) is unavailable, so a
	// client never sees internal for a transient failure.
	err = chatstate.Classify(luascript.Err(err))
	code := chatstate.ErrorCode(err)
	switch code {
	case chatstate.EINTERNAL:
		g.log.Error("event failed", "event", ev.Name, "user", cl.userID, "err", err)
	case chatstate.EUNAVAILABLE:
		g.log.Debug("event refused: backend unavailable", "event", ev.Name, "user", cl.userID, "err", err)
	}
	if code == "" {
		code = "ok"
	}
	g.m.events.WithLabelValues(ev.Name, code).Inc()
	if ev.Name == "message:send" {
		g.m.sendAck.WithLabelValues(code).Observe(time.Since(start).Seconds())
	}
	if !ev.HasAck() {
		return
	}
	if err != nil {
		ev.Ack(map[string]any{"ok": false, "error": chatstate.Payload(err)})
		return
	}
	if reply == nil {
		reply = map[string]any{}
	}
	reply["ok"] = true
	ev.Ack(reply)
}

// dispatch runs the handler of ev; an unknown name is renamed "unknown" so
// metrics labels stay bounded.
func (g *Gateway) dispatch(ctx context.Context, cl *client, ev *socketio.Event) (map[string]any, error) {
	switch ev.Name {
	case "message:send":
		return g.handleSend(ctx, cl, ev)
	case "typing:start":
		return g.handleTyping(ctx, cl, ev, true)
	case "typing:stop":
		return g.handleTyping(ctx, cl, ev, false)
	case "presence:update":
		return g.handlePresenceUpdate(ctx, cl, ev)
	case "presence:get":
		return g.handlePresenceGet(ctx, cl, ev)
	case "messages:sync":
		return g.handleSync(ctx, cl, ev)
	case "message:edit":
		return g.handleEntry(ctx, cl, ev, chatstate.TypeEdit)
	case "message:delete":
		return g.handleEntry(ctx, cl, ev, chatstate.TypeDelete)
	case "message:react":
		return g.handleEntry(ctx, cl, ev, chatstate.TypeReaction)
	case "device:register":
		return g.handleDeviceRegister(ctx, cl, ev)
	case "notifications:list":
		return g.handleNotificationsList(ctx, cl, ev)
	case "message:read":
		return g.handleRead(ctx, cl, ev)
	case "conversations:list":
		return g.handleConversationsList(ctx, cl, ev)
	}
	err := chatstate.Errorf(chatstate.EINVALID, "unknown event %q", truncate(ev.Name, 64))
	ev.Name = "unknown"
	return nil, err
}

// decodeArg decodes the event's first argument into v.
func decodeArg(ev *socketio.Event, v any) error {
	if len(ev.Args) == 0 {
		return chatstate.Errorf(chatstate.EINVALID, "payload object required")
	}
	if err := json.Unmarshal(ev.Args[0], v); err != nil {
		return chatstate.Errorf(chatstate.EINVALID, "payload must be an object with the documented fields")
	}
	return nil
}

type sendRequest struct {
	ConversationID  string `json:"conversationId"`
	ClientMessageID string `json:"clientMessageId"`
	Content         string `json:"content"`
	Type            string `json:"type"`
}

func (g *Gateway) handleSend(ctx context.Context, cl *client, ev *socketio.Event) (map[string]any, error) {
	var req sendRequest
	if err := decodeArg(ev, &req); err != nil {
		return nil, err
	}
	msg, err := g.newMessage(chatstate.Message{ConversationID: req.ConversationID, SenderID: cl.userID,
		Content: req.Content, Type: req.Type, ClientMessageID: req.ClientMessageID})
	if err != nil {
		return nil, err
	}
	sent, err := g.deliverSocket(ctx, cl, msg)
	if err != nil {
		return nil, err
	}
	return map[string]any{"message": sent}, nil
}

// echoTimeout bounds the ack's wait for its message's publication, which
// only a lost Pub/Sub connection delays (clients then resync anyway).
const echoTimeout = 2 * time.Second

// errLiveDown refuses a send while this node's Pub/Sub subscriber is being
// restored (hub.live).
var errLiveDown = chatstate.Unavailable("live delivery", errors.New("redis pub/sub subscriber reconnecting"))

type convRequest struct {
	ConversationID string `json:"conversationId"`
	AfterSeq       int64  `json:"afterSeq"`
	Limit          int    `json:"limit"`
}

// members returns the conversation's members, requiring cl's user among them.
func (g *Gateway) members(ctx context.Context, cl *client, convID string) ([]string, error) {
	if err := chatstate.ValidateID("conversationId", convID); err != nil {
		return nil, err
	}
	members, err := g.deps.Directory.Members(ctx, convID)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(members, cl.userID) {
		return nil, chatstate.Errorf(chatstate.EFORBIDDEN, "not a member of this conversation")
	}
	return members, nil
}

func (g *Gateway) handleTyping(ctx context.Context, cl *client, ev *socketio.Event, start bool) (map[string]any, error) {
	var req convRequest
	if err := decodeArg(ev, &req); err != nil {
		return nil, err
	}
	members, err := g.members(ctx, cl, req.ConversationID)
	if err != nil {
		return nil, err
	}
	conv := req.ConversationID
	if !start {
		if err := g.deps.State.StopUserTyping(ctx, cl.userID, conv); err != nil {
			return nil, err
		}
		cl.mu.Lock()
		t, was := cl.typing[conv]
		if was {
			t.Stop()
			delete(cl.typing, conv)
		}
		cl.mu.Unlock()
		if was {
			g.publishTo(ctx, others(members, cl.userID), "", "typing", typingEvent(conv, cl.userID, false))
		}
		return nil, nil
	}
	if err := g.deps.State.SetUserTyping(ctx, cl.userID, conv); err != nil {
		return nil, err
	}
	cl.mu.Lock()
	if cl.gone {
		cl.mu.Unlock()
		return nil, nil
	}
	t, already := cl.typing[conv]
	if already {
		t.Reset(g.cfg.TypingTTL)
	} else {
		if cl.typing == nil {
			cl.typing = make(map[string]*time.Timer)
		}
		cl.typing[conv] = time.AfterFunc(g.cfg.TypingTTL, func() { g.typingExpired(cl, conv) })
	}
	cl.mu.Unlock()
	if !already {
		// Renewals within the TTL are not re-broadcast: the members already
		// show this user typing.
		g.publishTo(ctx, others(members, cl.userID), "", "typing", typingEvent(conv, cl.userID, true))
	}
	return nil, nil
}

// typingExpired sends `typing: false` when a start was not renewed within
// the TTL, unless another device of the user keeps the entry alive.
func (g *Gateway) typingExpired(cl *client, conv string) {
	if !g.tasks.add() {
		return // closed: the disconnect announced typing false
	}
	defer g.tasks.done()
	cl.mu.Lock()
	if cl.gone {
		cl.mu.Unlock()
		return
	}
	delete(cl.typing, conv)
	cl.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typers, err := g.deps.State.TypingUsers(ctx, conv)
	if err != nil || slices.Contains(typers, cl.userID) {
		return
	}
	g.announceTyping(ctx, conv, cl.userID, false)
}

// announceTyping tells the other members of conv whether user is typing.
func (g *Gateway) announceTyping(ctx context.Context, conv, user string, typing bool) {
	members, err := g.deps.Directory.Members(ctx, conv)
	if err != nil {
		return
	}
	g.publishTo(ctx, others(members, user), "", "typing", typingEvent(conv, user, typing))
}

func typingEvent(conv, user string, typing bool) map[string]any {
	return map[string]any{"conversationId": conv, "userId": user, "typing": typing}
}

func (g *Gateway) handlePresenceUpdate(ctx context.Context, cl *client, ev *socketio.Event) (map[string]any, error) {
	var req struct {
		Status string `json:"status"`
	}
	if err := decodeArg(ev, &req); err != nil {
		return nil, err
	}
	st, err := chatstate.ParseStatus(req.Status)
	if err != nil {
		return nil, err
	}
	change, err := g.deps.State.UpdateUserStatus(ctx, cl.userID, st)
	if err != nil {
		return nil, err
	}
	if change.Changed {
		g.publishPresence(ctx, change.After)
	}
	return map[string]any{"status": st}, nil
}

func (g *Gateway) handlePresenceGet(ctx context.Context, cl *client, ev *socketio.Event) (map[string]any, error) {
	var req struct {
		UserIDs []string `json:"userIds"`
	}
	if err := decodeArg(ev, &req); err != nil {
		return nil, err
	}
	out, err := g.PresenceOf(ctx, req.UserIDs)
	if err != nil {
		return nil, err
	}
	return map[string]any{"presence": out}, nil
}

func (g *Gateway) handleSync(ctx context.Context, cl *client, ev *socketio.Event) (map[string]any, error) {
	var req convRequest
	if err := decodeArg(ev, &req); err != nil {
		return nil, err
	}
	if req.AfterSeq < 0 || req.Limit < 0 {
		return nil, chatstate.Errorf(chatstate.EINVALID, "afterSeq and limit must not be negative")
	}
	members, err := g.members(ctx, cl, req.ConversationID)
	if err != nil {
		return nil, err
	}
	limit := req.Limit
	if limit == 0 || limit > g.cfg.SyncLimit {
		limit = g.cfg.SyncLimit
	}
	msgs, err := g.deps.Messages.Sync(ctx, req.ConversationID, req.AfterSeq, limit)
	if err != nil {
		return nil, err
	}
	if msgs == nil {
		msgs = []chatstate.Message{}
	}
	if g.deps.Reads == nil {
		return map[string]any{"messages": msgs}, nil
	}
	// Read after the messages: a position can only be at or below what a
	// later sync returns, never ahead of what the client can draw.
	reads, err := g.syncReads(ctx, req.ConversationID, members)
	if err != nil {
		return nil, err
	}
	return map[string]any{"messages": msgs, "reads": reads}, nil
}

func others(list []string, except string) []string {
	out := make([]string, 0, len(list))
	for _, v := range list {
		if v != except {
			out = append(out, v)
		}
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
