package gateway

import (
	"context"
	"slices"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/cache"
	"github.com/chatstate/chatstate/messaging"
	"github.com/chatstate/chatstate/socketio"
)

// Timeline events (docs/timeline.md): message:edit, message:delete and
// message:react append an entry that goes through the same durable send as
// message:send (next seq, stored, cached, published as message:new, replayed
// by messages:sync) and updates its target in the store and the cache.

type entryRequest struct {
	ConversationID string `json:"conversationId"`
	MessageID      string `json:"messageId"`
	Content        string `json:"content"`
	Emoji          string `json:"emoji"`
	Remove         bool   `json:"remove"`
}

func (g *Gateway) handleEntry(ctx context.Context, cl *client, ev *socketio.Event, typ string) (map[string]any, error) {
	var req entryRequest
	if err := decodeArg(ev, &req); err != nil {
		return nil, err
	}
	if err := chatstate.ValidateID("messageId", req.MessageID); err != nil {
		return nil, err
	}
	// A non-member learns nothing of the target.
	if _, err := g.members(ctx, cl, req.ConversationID); err != nil {
		return nil, err
	}
	target, err := g.deps.Messages.Message(ctx, req.ConversationID, req.MessageID)
	if err != nil {
		return nil, err
	}
	if target.Type == chatstate.TypeMembers || chatstate.IsTargetEntry(target.Type) {
		return nil, chatstate.Errorf(chatstate.ENOTFOUND, "message %s is a timeline entry, not a message", req.MessageID)
	}
	if target.Deleted {
		if typ == chatstate.TypeEdit {
			return nil, chatstate.Errorf(chatstate.ECONFLICT, "message %s was deleted", req.MessageID)
		}
		return nil, chatstate.Errorf(chatstate.ENOTFOUND, "message %s was deleted", req.MessageID)
	}
	msg := chatstate.Message{ConversationID: req.ConversationID, SenderID: cl.userID, Type: typ,
		Target: target.ID, TargetSeq: target.Seq}
	switch typ {
	case chatstate.TypeEdit, chatstate.TypeDelete:
		if target.SenderID != cl.userID {
			return nil, chatstate.Errorf(chatstate.EFORBIDDEN, "only the sender can %s a message", typ)
		}
		if typ == chatstate.TypeEdit {
			if req.Content == "" {
				return nil, chatstate.Errorf(chatstate.EINVALID, "content is required")
			}
			msg.Content = req.Content
		}
	case chatstate.TypeReaction:
		if err := chatstate.ValidateEmoji(req.Emoji); err != nil {
			return nil, err
		}
		msg.Content, msg.Remove = req.Emoji, req.Remove
		if !req.Remove && !target.HasReaction(req.Emoji, cl.userID) {
			// Soft limits: two devices of one user reacting at the same
			// instant may both pass.
			if target.UserReactions(cl.userID) >= chatstate.MaxReactionsPerUser {
				return nil, chatstate.Errorf(chatstate.ETOOLARGE, "at most %d reactions per user on one message", chatstate.MaxReactionsPerUser)
			}
			if target.Reactions != nil && (*target.Reactions)[req.Emoji] == nil && len(*target.Reactions) >= chatstate.MaxReactionKinds {
				return nil, chatstate.Errorf(chatstate.ETOOLARGE, "at most %d different reactions on one message", chatstate.MaxReactionKinds)
			}
		}
	}
	sent, err := g.deliverSocket(ctx, cl, msg)
	if err != nil {
		return nil, err
	}
	return map[string]any{"message": sent}, nil
}

// ChangeMembers adds and removes members of a conversation and appends its
// members entry (sender actorID, "chatstate" when empty), published to the
// old and the new members: the removed ones learn of their removal, and
// from that entry on nothing reaches them, on any node, because every
// node's next member read sees the new set (Directory.UpdateMembers) and
// sends read their recipients after reserving their seq (SendTo).
//
// A change that changes nothing appends no entry and returns a nil entry,
// unless requestID (the entry's clientMessageId) is set: then a retry of a
// change whose entry may not have been sent (the first call failed after
// storing the change) sends it, once, with the part of the request that
// holds now.
func (g *Gateway) ChangeMembers(ctx context.Context, conversationID, actorID, requestID string, change chatstate.MembersChange) (chatstate.Conversation, *chatstate.Message, error) {
	if actorID == "" {
		actorID = "chatstate"
	}
	if err := chatstate.ValidateID("actorId", actorID); err != nil {
		return chatstate.Conversation{}, nil, err
	}
	if requestID != "" {
		if err := chatstate.ValidateID("requestId", requestID); err != nil {
			return chatstate.Conversation{}, nil, err
		}
	}
	c, eff, err := g.deps.Directory.UpdateMembers(ctx, conversationID, change)
	if err != nil {
		return c, nil, err
	}
	if len(eff.Added)+len(eff.Removed) == 0 {
		if requestID == "" {
			return c, nil, nil
		}
		eff = chatstate.MembersChange{Added: []string{}, Removed: []string{}}
		for _, id := range change.Added {
			if slices.Contains(c.Members, id) && !slices.Contains(eff.Added, id) {
				eff.Added = append(eff.Added, id)
			}
		}
		for _, id := range change.Removed {
			if !slices.Contains(c.Members, id) && !slices.Contains(eff.Removed, id) {
				eff.Removed = append(eff.Removed, id)
			}
		}
		if len(eff.Added)+len(eff.Removed) == 0 {
			return c, nil, nil
		}
	}
	if _, up := g.hub.live(); !up {
		return c, nil, errLiveDown
	}
	msg := chatstate.Message{ConversationID: c.ID, SenderID: actorID, Type: chatstate.TypeMembers,
		Members: &eff, ClientMessageID: requestID}
	// Old and new members get the entry: the removed ones learn of it.
	sent, err := g.deliver(ctx, msg, messaging.Route{}, func(ctx context.Context, members []string) ([]string, error) {
		members, err := g.orRead(ctx, c.ID, members)
		return union(members, eff.Removed), err
	}, "")
	if err != nil {
		return c, nil, err
	}
	if sent.Message.Type != chatstate.TypeMembers || sent.Message.ConversationID != c.ID {
		return c, nil, chatstate.Errorf(chatstate.ECONFLICT, "requestId was already used for another message")
	}
	// The added members' nodes subscribe and catch up from the entry.
	if err := g.announceJoin(ctx, c.ID, eff.Added, sent.Message.Seq-1); err != nil {
		g.log.Warn("join not announced: the added members' open sockets get the conversation's messages after a reconnect", "conversation", c.ID, "err", err)
	}
	if g.deps.Reads != nil {
		// An added member starts with the history read: its badge counts
		// what arrives from now on, not the conversation's past.
		for _, u := range eff.Added {
			if _, err := g.deps.Reads.MarkRead(ctx, c.ID, u, sent.Message.Seq, g.cfg.ReceiptInterval); err != nil {
				g.log.Warn("added member's read position not set", "conversation", c.ID, "user", u, "err", err)
			}
		}
	}
	return c, &sent.Message, nil
}

// sendLimit is the user's message rate limit, which every send from a
// socket (messages and timeline entries alike) counts against, in its
// reservation's round trip.
func (g *Gateway) sendLimit() *cache.Limit {
	return &cache.Limit{Action: "message_send", Max: g.cfg.MessageRateLimit, Window: g.cfg.MessageRateWindow}
}

// deliverSocket sends msg for a socket and returns it as stored once it
// is safe to ack: live delivery to this node held throughout, and the
// message's own publication reached this node's hub.
func (g *Gateway) deliverSocket(ctx context.Context, cl *client, msg chatstate.Message) (chatstate.Message, error) {
	select {
	case <-cl.echo: // a late echo of an earlier send
	default:
	}
	losses, up := g.hub.live()
	if !up {
		return chatstate.Message{}, errLiveDown
	}
	// The reservation refuses a non-member without taking a seq and reads
	// the members; only when Redis had no current copy are they read here,
	// after it (and the sender checked again).
	sent, err := g.deliver(ctx, msg, messaging.Route{CheckSender: true, Limit: g.sendLimit(), Echo: cl.echo}, func(ctx context.Context, members []string) ([]string, error) {
		if members == nil {
			var err error
			if members, err = g.members(ctx, cl, msg.ConversationID); err != nil {
				return nil, err
			}
		} else if !slices.Contains(members, cl.userID) {
			return nil, chatstate.Errorf(chatstate.EFORBIDDEN, "not a member of this conversation")
		}
		// Before the publication: its echo, and what follows it, must
		// reach this node even if the sender's join was not announced here
		// yet.
		if err := g.hub.ensureConv(ctx, cl.userID, msg.ConversationID); err != nil {
			return nil, err
		}
		return members, nil
	}, cl.conn.ID())
	if err != nil {
		return chatstate.Message{}, err
	}
	if sent.Published && !sent.Echoed {
		// Messages settled before this one were published before it, on
		// the same channel, and this socket receives them through the
		// hub. Acking once this message's own publication reaches the hub
		// puts the ack behind them on the socket, so a client never sees
		// this seq before a lower one it could then skip.
		t := time.NewTimer(echoTimeout)
		select {
		case <-cl.echo:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	if l, up := g.hub.live(); !up || l != losses {
		// Stored, but this node's live delivery broke meanwhile: the
		// retry (same clientMessageId) is acked once it is restored.
		return chatstate.Message{}, errLiveDown
	}
	return sent.Message, nil
}

// union is a followed by the ids of b not in a.
func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, id := range b {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}
