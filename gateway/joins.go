package gateway

import (
	"context"
	"encoding/json"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/socketio"
)

// Joins: a node subscribes to a conversation's channel only for the local
// members it knows of (convsub.go). A user who becomes a member while
// connected is announced on its user channel with a join control, and each
// node holding the user subscribes and catches up from the seq the control
// names.

// joinCatchUpLimit bounds what one join delivers from the message flow;
// past it the user's sockets are asked to resync instead.
const joinCatchUpLimit = 1000

// ConversationCreated announces a new conversation to its members' nodes,
// so those online receive its messages live from the first. Whatever
// creates a conversation (the HTTP API, the demo, a backend through the
// directory) calls it after the directory stored the conversation.
func (g *Gateway) ConversationCreated(ctx context.Context, c chatstate.Conversation) error {
	return g.announceJoin(ctx, c.ID, c.Members, 0)
}

// announceJoin tells the nodes holding users that they are members of
// convID, with messages above seq from possibly theirs.
func (g *Gateway) announceJoin(ctx context.Context, convID string, users []string, from int64) error {
	if len(users) == 0 {
		return nil
	}
	b, err := json.Marshal(control{Op: "join", ConversationID: convID, From: max(from, 0)})
	if err != nil {
		return err
	}
	return g.publishEnvelope(ctx, users, controlPrefix+string(b))
}

// joinLocal runs a join control for this node's sockets of userID.
func (g *Gateway) joinLocal(userID, convID string, from int64) {
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.EventTimeout)
	defer cancel()
	if g.hub.catchUp(ctx, userID, convID, from, g.fetchConv) {
		return
	}
	// What the join missed could not be read: the client syncs it.
	f, err := socketio.EncodeEvent("resync", map[string]any{"reason": "join", "conversationId": convID})
	if err != nil {
		return
	}
	for _, c := range g.hub.conns(userID) {
		c.Send(f)
	}
}

// fetchConv reads convID's settled messages above afterSeq as message:new
// frames, the way messages:sync does, page by page up to the watermark.
func (g *Gateway) fetchConv(ctx context.Context, convID string, afterSeq int64) ([]livePub, error) {
	var out []livePub
	for len(out) < joinCatchUpLimit {
		msgs, err := g.deps.Messages.Sync(ctx, convID, afterSeq, g.cfg.SyncLimit)
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			b, err := json.Marshal(m)
			if err != nil {
				return nil, err
			}
			pkt := make([]byte, 0, len(g.msgPrefix)+len(b)+len(g.msgSuffix))
			pkt = append(append(append(pkt, g.msgPrefix...), b...), g.msgSuffix...)
			out = append(out, livePub{seq: m.Seq, frame: socketio.RawFrame(pkt)})
			afterSeq = m.Seq
		}
		if len(msgs) < g.cfg.SyncLimit {
			return out, nil
		}
	}
	return nil, chatstate.Errorf(chatstate.ETOOLARGE, "more than %d messages to catch up", joinCatchUpLimit)
}
