package gateway

import (
	"context"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/socketio"
)

// BroadcastToUser emits event to every connected device of userID, on
// whichever node it is.
func (g *Gateway) BroadcastToUser(ctx context.Context, userID, event string, args ...any) error {
	if err := chatstate.ValidateID("userId", userID); err != nil {
		return err
	}
	return g.publish(ctx, []string{userID}, "", event, args...)
}

// BroadcastToConversation emits event to every connected device of every
// member of the conversation.
func (g *Gateway) BroadcastToConversation(ctx context.Context, conversationID, event string, args ...any) error {
	members, err := g.deps.Directory.Members(ctx, conversationID)
	if err != nil {
		return err
	}
	return g.publish(ctx, members, "", event, args...)
}

// BroadcastToFriends emits event to every connected device of userID's friends.
func (g *Gateway) BroadcastToFriends(ctx context.Context, userID, event string, args ...any) error {
	friends, err := g.deps.Directory.Friends(ctx, userID)
	if err != nil {
		return err
	}
	return g.publish(ctx, friends, "", event, args...)
}

// BroadcastPresence tells userID's friends about a presence change; the
// cleanup service calls it for users whose node crashed.
func (g *Gateway) BroadcastPresence(ctx context.Context, p chatstate.Presence) error {
	return g.publishPresence(ctx, p)
}

func (g *Gateway) publishPresence(ctx context.Context, p chatstate.Presence) error {
	friends, err := g.deps.Directory.Friends(ctx, p.UserID)
	if err != nil {
		g.log.Warn("presence not broadcast: friend list unavailable", "user", p.UserID, "err", err)
		return err
	}
	return g.publishPresenceTo(ctx, friends, p)
}

func (g *Gateway) publishPresenceTo(ctx context.Context, friends []string, p chatstate.Presence) error {
	return g.publish(ctx, friends, "", "presence", map[string]any{
		"userId": p.UserID, "online": p.Online, "status": p.Status, "lastSeen": p.LastSeen,
	})
}

// publishTo is publish for best-effort events (typing): failures are logged
// and counted, not returned.
func (g *Gateway) publishTo(ctx context.Context, users []string, exclude, event string, args ...any) {
	if err := g.publish(ctx, users, exclude, event, args...); err != nil {
		g.m.dropped.WithLabelValues("publish").Inc()
		g.log.Warn("publish failed", "event", event, "err", err)
	}
}

// publish encodes the event once and sends it to each user's channel in one
// pipelined round trip. exclude is a socket id that must not receive it (the
// sender's own socket).
func (g *Gateway) publish(ctx context.Context, users []string, exclude, event string, args ...any) error {
	if len(users) == 0 {
		return nil
	}
	packet, err := socketio.EncodeEventPacket(event, args...)
	if err != nil {
		return err
	}
	return g.publishEnvelope(ctx, users, exclude+"\x00"+string(packet))
}

// publishEnvelope publishes a hub envelope to each user's channel in one
// round trip.
func (g *Gateway) publishEnvelope(ctx context.Context, users []string, envelope string) error {
	return g.hub.b.PublishToUsers(ctx, users, envelope)
}
