package gateway

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/cache"
	"github.com/chatstate/chatstate/messaging"
)

// This file is the app-backend side of the gateway (the design's
// handleNewMessage, broadcastToUser and broadcastToConversation for
// servers), which the HTTP API serves with the API key. A backend send
// takes the same path as message:send: newMessage, then deliver.

// newMessage checks the rules a message a client or a backend asks to send
// must meet beyond any message's (messaging.Service.SendTo completes and
// validates it): a clientMessageId, content, and a type that is not a
// timeline entry's. ConversationID, SenderID, ClientMessageID, Content and
// Type come from the request.
func (g *Gateway) newMessage(m chatstate.Message) (chatstate.Message, error) {
	if m.ClientMessageID == "" {
		return m, chatstate.Errorf(chatstate.EINVALID, "clientMessageId is required")
	}
	if m.Content == "" {
		return m, chatstate.Errorf(chatstate.EINVALID, "content is required")
	}
	if m.Type != "" {
		if err := chatstate.ValidateClientType(m.Type); err != nil {
			return m, err
		}
	}
	return m, nil
}

// deliver sends msg with the message flow to the devices of the members
// recipients returns, except the socket excludeSocket, counts it and tells
// the notifier about it for the members without a connection. recipients
// gets the members read with the seq's reservation (nil when Redis had no
// current copy: then it reads them), so a members entry with a lower seq
// is always seen (messaging.Service.SendTo): a removed member gets nothing.
// route's CheckSender and Limit are as in messaging.Route.
//
// The flow persists the message, commits it and returns once its seq is
// settled: success means durable, and a resend (same sender and
// clientMessageId) is neither stored nor delivered again.
func (g *Gateway) deliver(ctx context.Context, msg chatstate.Message, route messaging.Route, recipients func(ctx context.Context, members []string) ([]string, error), excludeSocket string) (messaging.Sent, error) {
	var members []string
	route.To = func(ctx context.Context, reserved []string) (cache.Publish, error) {
		var err error
		if members, err = recipients(ctx, reserved); err != nil {
			return cache.Publish{}, err
		}
		return g.messagePublish(msg.ConversationID, members, excludeSocket), nil
	}
	sent, err := g.deps.Messages.SendTo(ctx, msg, route)
	if err != nil {
		return sent, err
	}
	if !sent.Duplicate {
		g.m.messages.Inc()
	}
	if sent.Published && g.deps.Notifier != nil && chatstate.CountsAsUnread(msg.Type) {
		// Published by this call: new, or a resend of one whose node died
		// before publishing it (and so before notifying). Timeline entries
		// push nothing.
		g.deps.Notifier.MessageSent(sent.Message, members, g.hub.notHeld(members, msg.SenderID))
	}
	return sent, nil
}

// orRead returns members when the reservation read them, else the
// directory's current members.
func (g *Gateway) orRead(ctx context.Context, conv string, members []string) ([]string, error) {
	if members != nil {
		return members, nil
	}
	return g.deps.Directory.Members(ctx, conv)
}

// SendAs sends a message on behalf of a backend (POST
// /v1/conversations/{id}/messages): msg.SenderID, ConversationID,
// ClientMessageID, Content and Type (empty: "text") as in message:send,
// validated the same way, with the same seq and the same idempotency on
// (sender, clientMessageId). The sender need not be a member (a bot or
// "system"); the message reaches every device of every member, the
// sender's included. There is no per-user rate limit: the caller holds the
// API key. duplicate reports a resend, answered with the original.
func (g *Gateway) SendAs(ctx context.Context, msg chatstate.Message) (stored chatstate.Message, duplicate bool, err error) {
	if err := chatstate.ValidateID("conversationId", msg.ConversationID); err != nil {
		return msg, false, err
	}
	if err := chatstate.ValidateID("senderId", msg.SenderID); err != nil {
		return msg, false, err
	}
	if msg, err = g.newMessage(msg); err != nil {
		return msg, false, err
	}
	if _, err := g.deps.Directory.Members(ctx, msg.ConversationID); err != nil {
		return msg, false, err // an unknown conversation takes no seq
	}
	sent, err := g.deliver(ctx, msg, messaging.Route{}, func(ctx context.Context, members []string) ([]string, error) {
		return g.orRead(ctx, msg.ConversationID, members)
	}, "")
	return sent.Message, sent.Duplicate, err
}

// PresenceOf is presence:get and GET /v1/presence: the public presence of
// up to MaxBulk users (duplicates count once).
func (g *Gateway) PresenceOf(ctx context.Context, userIDs []string) (map[string]chatstate.PresenceView, error) {
	ids, err := chatstate.ValidateIDs("userIds", userIDs, g.cfg.MaxBulk)
	if err != nil {
		return nil, err
	}
	out := make(map[string]chatstate.PresenceView, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	ps, err := g.deps.State.Presence(ctx, ids...)
	if err != nil {
		return nil, err
	}
	for id, p := range ps {
		out[id] = p.View()
	}
	return out, nil
}

// Limits of a custom event (EmitToUser, EmitToConversation).
const (
	MaxEventNameLen   = 64
	MaxEventDataBytes = 64 << 10
)

// reservedEvents are names chatstate emits itself or that Socket.IO
// clients treat specially; a custom event must not impersonate them.
var reservedEvents = map[string]bool{
	"message:new": true, "typing": true, "presence": true, "resync": true, "receipt": true,
	EventTokenExpired: true, drainEvent: true, EventNotification: true, "session:revoked": true,
	// Socket.IO's own: socket.io-client never hands these to listeners
	// as events, or treats them as its lifecycle.
	"connect": true, "connect_error": true, "disconnect": true, "disconnecting": true,
	"newListener": true, "removeListener": true,
}

// reservedPrefixes are the namespaces of chatstate's own events, present
// and future.
var reservedPrefixes = []string{
	"message:", "messages:", "session:", "typing:", "presence:", "receipt:", "conversation:", "conversations:",
	"notification:", "notifications:", "device:", "token:", "server:", "members:",
}

// ValidateCustomEvent checks a backend's custom event: a name of 1 to
// MaxEventNameLen characters from [A-Za-z0-9_.:-], not reserved (see
// reservedEvents and reservedPrefixes), and data of at most
// MaxEventDataBytes of JSON (empty: the event has no argument).
func ValidateCustomEvent(name string, data json.RawMessage) error {
	if name == "" || len(name) > MaxEventNameLen {
		return chatstate.Errorf(chatstate.EINVALID, "event must be 1 to %d characters", MaxEventNameLen)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_.:-", r)) {
			return chatstate.Errorf(chatstate.EINVALID, "event may only use letters, digits and _ . : -")
		}
	}
	if reservedEvents[name] {
		return chatstate.Errorf(chatstate.EINVALID, "event %q is reserved", name)
	}
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(name, p) {
			return chatstate.Errorf(chatstate.EINVALID, "event names starting with %q are reserved", p)
		}
	}
	if len(data) > MaxEventDataBytes {
		return chatstate.Errorf(chatstate.ETOOLARGE, "event data is %d bytes, the limit is %d", len(data), MaxEventDataBytes)
	}
	if len(data) > 0 && !json.Valid(data) {
		return chatstate.Errorf(chatstate.EINVALID, "event data must be JSON")
	}
	return nil
}

// EmitToUser delivers a custom event to every connected device of userID,
// on whichever node (POST /v1/users/{id}/events). Delivery is live only:
// a device offline at that moment never gets it.
func (g *Gateway) EmitToUser(ctx context.Context, userID, event string, data json.RawMessage) error {
	if err := ValidateCustomEvent(event, data); err != nil {
		return err
	}
	return g.BroadcastToUser(ctx, userID, event, eventArgs(data)...)
}

// EmitToConversation delivers a custom event to every connected device of
// every member of the conversation (POST /v1/conversations/{id}/events);
// ENOTFOUND for an unknown conversation.
func (g *Gateway) EmitToConversation(ctx context.Context, conversationID, event string, data json.RawMessage) error {
	if err := ValidateCustomEvent(event, data); err != nil {
		return err
	}
	if err := chatstate.ValidateID("conversationId", conversationID); err != nil {
		return err
	}
	return g.BroadcastToConversation(ctx, conversationID, event, eventArgs(data)...)
}

func eventArgs(data json.RawMessage) []any {
	if len(data) == 0 {
		return nil
	}
	return []any{data}
}
