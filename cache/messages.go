package cache

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/chatstate/chatstate"
	"github.com/redis/rueidis"
)

// messageBody is a Message without the fields the script fills in; the
// script prepends "seq" and "createdAt" to this JSON object.
type messageBody struct {
	ID              string `json:"id"`
	ConversationID  string `json:"conversationId"`
	SenderID        string `json:"senderId"`
	Content         string `json:"content"`
	Type            string `json:"type"`
	ClientMessageID string `json:"clientMessageId,omitempty"`
}

func (c *Cache) validateMessage(msg *chatstate.Message) error {
	if msg.ID == "" {
		msg.ID = chatstate.NewID()
	}
	if msg.Type == "" {
		msg.Type = "text"
	}
	return msg.Validate(c.cfg.MaxContentBytes)
}

// AddMessage caches msg in its conversation (see chatstate.Cache). An empty
// ID gets a random one, CreatedAt 0 gets Redis time. A ClientMessageID is
// remembered per sender for MessageTTL (the dedupe window, 24h by default,
// counted from the first send) or until DedupeLimit newer ids push it out.
func (c *Cache) AddMessage(ctx context.Context, msg chatstate.Message) (chatstate.Message, bool, error) {
	return c.AddMessageAndPublish(ctx, msg, Publish{})
}

// Publish asks AddMessageAndPublish to publish a new message to Channels as
// Prefix + message JSON + Suffix.
type Publish struct {
	Channels       []string
	Prefix, Suffix string
}

// AddMessageAndPublish is AddMessage that also publishes a new (not
// duplicate) message in the same script: one round trip for cache and
// fan-out, a cached message has always been published, and concurrent sends
// are published in seq order.
func (c *Cache) AddMessageAndPublish(ctx context.Context, msg chatstate.Message, pub Publish) (chatstate.Message, bool, error) {
	if err := c.validateMessage(&msg); err != nil {
		return chatstate.Message{}, false, err
	}
	body, err := json.Marshal(messageBody{
		ID: msg.ID, ConversationID: msg.ConversationID, SenderID: msg.SenderID,
		Content: msg.Content, Type: msg.Type, ClientMessageID: msg.ClientMessageID,
	})
	if err != nil {
		return chatstate.Message{}, false, err
	}
	field := ""
	if msg.ClientMessageID != "" {
		field = msg.SenderID + ":" + msg.ClientMessageID
	}
	conv := msg.ConversationID
	args := []string{string(body), itoa(msg.Seq), itoa(msg.CreatedAt), field,
		itoa(int64(c.cfg.MessageLimit)), ms(c.cfg.MessageTTL), itoa(int64(c.cfg.DedupeLimit))}
	if len(pub.Channels) > 0 {
		args = append(append(args, pub.Prefix, pub.Suffix), pub.Channels...)
	}
	reply, err := scriptMessageAdd.Exec(ctx, c.client,
		[]string{c.keys.Messages(conv), c.keys.Seq(conv), c.keys.MessageIDs(conv), c.keys.MessageIDOrder(conv)},
		args,
	).ToArray()
	if err != nil {
		return chatstate.Message{}, false, mapErr(err)
	}
	if len(reply) != 2 {
		return chatstate.Message{}, false, fmt.Errorf("cache: message_add: unexpected reply of %d elements", len(reply))
	}
	dup, err := reply[0].AsInt64()
	if err != nil {
		return chatstate.Message{}, false, err
	}
	raw, err := reply[1].ToString()
	if err != nil {
		return chatstate.Message{}, false, err
	}
	var stored chatstate.Message
	if err := json.Unmarshal([]byte(raw), &stored); err != nil {
		return chatstate.Message{}, false, fmt.Errorf("cache: stored message: %w", err)
	}
	return stored, dup == 1, nil
}

// Messages returns cached messages with seq > afterSeq, ascending. limit 0
// (or above MessageLimit) means MessageLimit.
func (c *Cache) Messages(ctx context.Context, conversationID string, afterSeq int64, limit int) ([]chatstate.Message, error) {
	if err := chatstate.ValidateID("conversationId", conversationID); err != nil {
		return nil, err
	}
	if afterSeq < 0 {
		return nil, chatstate.Errorf(chatstate.EINVALID, "afterSeq must not be negative")
	}
	n, err := limitArg("limit", limit, c.cfg.MessageLimit)
	if err != nil {
		return nil, err
	}
	raws, err := c.client.Do(ctx, c.client.B().Zrange().Key(c.keys.Messages(conversationID)).
		Min("("+itoa(afterSeq)).Max("+inf").Byscore().Limit(0, int64(n)).Build()).AsStrSlice()
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]chatstate.Message, 0, len(raws))
	for _, raw := range raws {
		var m chatstate.Message
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			return nil, fmt.Errorf("cache: cached message: %w", err)
		}
		out = append(out, m)
	}
	return out, nil
}

// LastSeq returns the conversation's sequence counter (0 when it has none),
// e.g. to persist it so it can be restored with SetSeqFloor after Redis
// lost its data.
func (c *Cache) LastSeq(ctx context.Context, conversationID string) (int64, error) {
	if err := chatstate.ValidateID("conversationId", conversationID); err != nil {
		return 0, err
	}
	n, err := c.client.Do(ctx, c.client.B().Get().Key(c.keys.Seq(conversationID)).Build()).AsInt64()
	if rueidis.IsRedisNil(err) {
		return 0, nil
	}
	return n, mapErr(err)
}

// SetSeqFloor raises the conversation's sequence counter to at least seq
// and returns the counter after the call. It never lowers it.
func (c *Cache) SetSeqFloor(ctx context.Context, conversationID string, seq int64) (int64, error) {
	if err := chatstate.ValidateID("conversationId", conversationID); err != nil {
		return 0, err
	}
	if seq < 0 || seq >= chatstate.MaxSeq {
		return 0, chatstate.Errorf(chatstate.EINVALID, "seq %d out of range", seq)
	}
	n, err := scriptMessageSeqFloor.Exec(ctx, c.client, []string{c.keys.Seq(conversationID)}, []string{itoa(seq)}).AsInt64()
	return n, mapErr(err)
}

// Reservation is the outcome of Reserve.
type Reservation struct {
	// Duplicate: the sender's clientMessageId is cached, so the message was
	// stored and published; Cached is it.
	Duplicate bool
	Cached    chatstate.Message
	// Missing: the seq counter is gone (a new conversation, or Redis lost
	// its data); restore it from the store with SetSeqFloor and reserve again.
	Missing bool
	// Seq is the next seq otherwise.
	Seq int64
}

// Reserve is the first step of a send that is persisted before it is
// cached: in one round trip it answers a resend from the dedupe cache or
// takes the conversation's next seq. clientMessageID may be empty.
func (c *Cache) Reserve(ctx context.Context, conversationID, senderID, clientMessageID string) (Reservation, error) {
	if err := chatstate.ValidateID("conversationId", conversationID); err != nil {
		return Reservation{}, err
	}
	if err := chatstate.ValidateID("senderId", senderID); err != nil {
		return Reservation{}, err
	}
	field := ""
	if clientMessageID != "" {
		if err := chatstate.ValidateID("clientMessageId", clientMessageID); err != nil {
			return Reservation{}, err
		}
		field = senderID + ":" + clientMessageID
	}
	reply, err := scriptMessageReserve.Exec(ctx, c.client,
		[]string{c.keys.Seq(conversationID), c.keys.MessageIDs(conversationID)}, []string{field}).ToArray()
	if err != nil {
		return Reservation{}, mapErr(err)
	}
	status, err := reply[0].AsInt64()
	if err != nil {
		return Reservation{}, err
	}
	switch {
	case status == -1:
		return Reservation{Missing: true}, nil
	case status == 1 && len(reply) == 2:
		raw, err := reply[1].ToString()
		if err != nil {
			return Reservation{}, err
		}
		var m chatstate.Message
		if err := json.Unmarshal([]byte(raw), &m); err != nil {
			return Reservation{}, fmt.Errorf("cache: cached message: %w", err)
		}
		return Reservation{Duplicate: true, Cached: m}, nil
	case status == 0 && len(reply) == 2:
		seq, err := reply[1].AsInt64()
		return Reservation{Seq: seq}, err
	}
	return Reservation{}, fmt.Errorf("cache: message_reserve: unexpected reply")
}
