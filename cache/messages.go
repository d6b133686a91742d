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
// ID gets a random one, CreatedAt 0 gets Redis time. A resend of a
// sender's ClientMessageID is a duplicate while the original is cached
// (among the last MessageLimit messages, within MessageTTL of the last
// write); after that the cache has nothing to answer it with and it is
// cached as a new message. Durable sends do not come here: they Reserve,
// store, then Commit, and the store refuses their late resends.
func (c *Cache) AddMessage(ctx context.Context, msg chatstate.Message) (chatstate.Message, bool, error) {
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
	conv := msg.ConversationID
	reply, err := scriptMessageAdd.Exec(ctx, c.client,
		[]string{c.keys.Messages(conv), c.keys.Seq(conv), c.keys.Dedupe(conv)},
		[]string{string(body), itoa(msg.Seq), itoa(msg.CreatedAt), dedupeField(msg.SenderID, msg.ClientMessageID),
			itoa(int64(c.cfg.MessageLimit)), ms(c.cfg.MessageTTL), itoa(int64(c.cfg.DedupeLimit))},
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
	stored, err := decodeMessage(reply[1])
	return stored, dup == 1, err
}

// dedupeField is the dedupe index member of a sender's clientMessageId, "" for none.
func dedupeField(senderID, clientMessageID string) string {
	if clientMessageID == "" {
		return ""
	}
	return senderID + ":" + clientMessageID
}

func decodeMessage(v rueidis.RedisMessage) (chatstate.Message, error) {
	raw, err := v.ToString()
	if err != nil {
		return chatstate.Message{}, err
	}
	var m chatstate.Message
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return chatstate.Message{}, fmt.Errorf("cache: cached message: %w", err)
	}
	return m, nil
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
// and returns the counter after the call. It never lowers it. A raise
// marks the seqs up to seq as reserved in a Redis that lost them
// (Keys.Restored), so Commit still publishes a stored one among them.
func (c *Cache) SetSeqFloor(ctx context.Context, conversationID string, seq int64) (int64, error) {
	if err := chatstate.ValidateID("conversationId", conversationID); err != nil {
		return 0, err
	}
	if seq < 0 || seq >= chatstate.MaxSeq {
		return 0, chatstate.Errorf(chatstate.EINVALID, "seq %d out of range", seq)
	}
	n, err := scriptMessageSeqFloor.Exec(ctx, c.client, []string{c.keys.Seq(conversationID), c.keys.Restored(conversationID)}, []string{itoa(seq)}).AsInt64()
	return n, mapErr(err)
}
