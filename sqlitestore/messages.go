package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/chatstate/chatstate"
)

func (s *Store) validateMessage(m *chatstate.Message) error {
	if m.Seq < 1 {
		return chatstate.Errorf(chatstate.EINVALID, "seq %d: a stored message has a seq of at least 1", m.Seq)
	}
	return m.Validate(s.cfg.MaxContentBytes)
}

// InsertMessages stores the batch in one transaction (see
// chatstate.MessageStore). Each row is INSERT ... ON CONFLICT DO NOTHING; a
// row that was not inserted is a duplicate when its (sender,
// clientMessageId) exists, else its seq was taken. The writer holds the
// database's write lock for the whole transaction, so nothing can change
// between the insert and that check.
func (s *Store) InsertMessages(ctx context.Context, msgs []chatstate.Message) ([]error, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if len(msgs) > s.cfg.MaxBatch {
		return nil, chatstate.Errorf(chatstate.ETOOLARGE, "batch of %d messages, the limit is %d", len(msgs), s.cfg.MaxBatch)
	}
	errs := make([]error, len(msgs))
	valid := 0
	for i := range msgs {
		if errs[i] = s.validateMessage(&msgs[i]); errs[i] == nil {
			valid++
		}
	}
	if valid == 0 {
		return errs, nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, dbErr("begin", err)
	}
	defer tx.Rollback()
	ins, dup := tx.StmtContext(ctx, s.insertMsg), tx.StmtContext(ctx, s.clientDup)
	for i := range msgs {
		if errs[i] != nil {
			continue
		}
		m := &msgs[i]
		var clientID any // NULL: no idempotency key, never conflicts
		if m.ClientMessageID != "" {
			clientID = m.ClientMessageID
		}
		members := ""
		if m.Members != nil {
			b, err := json.Marshal(m.Members)
			if err != nil {
				return nil, err
			}
			members = string(b)
		}
		res, err := ins.ExecContext(ctx, m.ConversationID, m.Seq, m.ID, m.SenderID, clientID, m.Type, m.Content, m.CreatedAt,
			m.Target, m.TargetSeq, m.Remove, members)
		if err != nil {
			return nil, dbErr("insert message", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, dbErr("insert message", err)
		}
		if n == 1 {
			if err := applyEntry(ctx, tx, m); err != nil {
				return nil, err
			}
			continue
		}
		errs[i] = chatstate.ErrSeqTaken
		if clientID != nil {
			var one int
			switch err := dup.QueryRowContext(ctx, m.SenderID, m.ClientMessageID).Scan(&one); {
			case err == nil:
				errs[i] = chatstate.ErrDuplicateMessage
			case err != sql.ErrNoRows:
				return nil, dbErr("check duplicate", err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, dbErr("commit", err)
	}
	return errs, nil
}

// applyEntry applies a just-stored entry to its target in the insert's
// transaction (see chatstate.MessageStore.InsertMessages).
func applyEntry(ctx context.Context, tx *sql.Tx, m *chatstate.Message) error {
	var err error
	switch m.Type {
	case chatstate.TypeEdit:
		_, err = tx.ExecContext(ctx, `UPDATE messages SET content = ?, edited_at = ?, edit_seq = ?
			WHERE conversation_id = ? AND id = ? AND deleted = 0 AND edit_seq < ?`,
			m.Content, m.CreatedAt, m.Seq, m.ConversationID, m.Target, m.Seq)
	case chatstate.TypeDelete:
		_, err = tx.ExecContext(ctx, `UPDATE messages SET content = '', edited_at = 0, deleted = 1
			WHERE conversation_id = ? AND id = ?`, m.ConversationID, m.Target)
	case chatstate.TypeReaction:
		_, err = tx.ExecContext(ctx, `INSERT INTO reactions (conversation_id, message_id, emoji, user_id, state)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET state = max(state, excluded.state)`,
			m.ConversationID, m.Target, m.Content, m.SenderID, chatstate.ReactionState(m.Seq, m.Remove))
	}
	return dbErr("apply "+m.Type, err)
}

const messageColumns = `id, conversation_id, sender_id, content, type, created_at, seq, coalesce(client_message_id, ''),
	target, target_seq, remove, members, edited_at, deleted`

func scanMessages(rows *sql.Rows, capHint int) ([]chatstate.Message, error) {
	defer rows.Close()
	out := make([]chatstate.Message, 0, capHint)
	for rows.Next() {
		var m chatstate.Message
		var members string
		if err := rows.Scan(&m.ID, &m.ConversationID, &m.SenderID, &m.Content, &m.Type, &m.CreatedAt, &m.Seq, &m.ClientMessageID,
			&m.Target, &m.TargetSeq, &m.Remove, &members, &m.EditedAt, &m.Deleted); err != nil {
			return nil, dbErr("read messages", err)
		}
		if members != "" {
			m.Members = new(chatstate.MembersChange)
			if err := json.Unmarshal([]byte(members), m.Members); err != nil {
				return nil, fmt.Errorf("sqlitestore: members of %s: %w", m.ID, err)
			}
			m.Members = m.Members.NonNil()
		}
		out = append(out, m)
	}
	return out, dbErr("read messages", rows.Err())
}

// withReactions fills in the reactions of the page's originals, one query.
func (s *Store) withReactions(ctx context.Context, conv string, msgs []chatstate.Message) ([]chatstate.Message, error) {
	args := []any{conv}
	at := map[string]int{}
	for i, m := range msgs {
		if !m.Deleted && m.Target == "" && m.Members == nil {
			at[m.ID] = i
			args = append(args, m.ID)
		}
	}
	if len(at) == 0 {
		return msgs, nil
	}
	rows, err := s.r.QueryContext(ctx, `SELECT message_id, emoji, user_id, state FROM reactions
		WHERE conversation_id = ? AND message_id IN (?`+strings.Repeat(", ?", len(at)-1)+`) AND state % 2 = 1`, args...)
	if err != nil {
		return nil, dbErr("reactions", err)
	}
	defer rows.Close()
	pairs := map[string][]chatstate.ReactionPair{}
	for rows.Next() {
		var id string
		var p chatstate.ReactionPair
		if err := rows.Scan(&id, &p.Emoji, &p.User, &p.State); err != nil {
			return nil, dbErr("reactions", err)
		}
		pairs[id] = append(pairs[id], p)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr("reactions", err)
	}
	for id, ps := range pairs {
		msgs[at[id]].Reactions = chatstate.BuildReactions(ps)
	}
	return msgs, nil
}

// MessageByID returns ENOTFOUND when the conversation has no such message.
func (s *Store) MessageByID(ctx context.Context, conversationID, id string) (chatstate.Message, error) {
	if err := s.check(); err != nil {
		return chatstate.Message{}, err
	}
	if err := chatstate.ValidateID("conversationId", conversationID); err != nil {
		return chatstate.Message{}, err
	}
	if err := chatstate.ValidateID("message id", id); err != nil {
		return chatstate.Message{}, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+messageColumns+` FROM messages
		WHERE conversation_id = ? AND id = ? AND type != ?`, conversationID, id, chatstate.TypeSkip)
	if err != nil {
		return chatstate.Message{}, dbErr("message by id", err)
	}
	out, err := scanMessages(rows, 1)
	if err == nil {
		out, err = s.withReactions(ctx, conversationID, out)
	}
	if err != nil {
		return chatstate.Message{}, err
	}
	if len(out) == 0 {
		return chatstate.Message{}, chatstate.Errorf(chatstate.ENOTFOUND, "no message %s", id)
	}
	return out[0], nil
}

func (s *Store) checkPage(conversationID string, seq int64, limit int) error {
	if err := s.check(); err != nil {
		return err
	}
	if err := chatstate.ValidateID("conversationId", conversationID); err != nil {
		return err
	}
	if seq < 0 {
		return chatstate.Errorf(chatstate.EINVALID, "seq %d is negative", seq)
	}
	return chatstate.CheckPageSize(limit, s.cfg.MaxPageSize)
}

// MessagesAfter returns up to limit messages with seq > afterSeq, ascending,
// skip markers left out.
func (s *Store) MessagesAfter(ctx context.Context, conversationID string, afterSeq int64, limit int) ([]chatstate.Message, error) {
	if err := s.checkPage(conversationID, afterSeq, limit); err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+messageColumns+` FROM messages
		WHERE conversation_id = ? AND seq > ? AND type != ? ORDER BY seq LIMIT ?`, conversationID, afterSeq, chatstate.TypeSkip, limit)
	if err != nil {
		return nil, dbErr("messages after", err)
	}
	out, err := scanMessages(rows, min(limit, 64))
	if err != nil {
		return nil, err
	}
	return s.withReactions(ctx, conversationID, out)
}

// MessagesBefore returns the last limit messages with seq < beforeSeq,
// ascending.
func (s *Store) MessagesBefore(ctx context.Context, conversationID string, beforeSeq int64, limit int) ([]chatstate.Message, error) {
	if err := s.checkPage(conversationID, beforeSeq, limit); err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+messageColumns+` FROM messages
		WHERE conversation_id = ? AND seq < ? AND type != ? ORDER BY seq DESC LIMIT ?`, conversationID, beforeSeq, chatstate.TypeSkip, limit)
	if err != nil {
		return nil, dbErr("messages before", err)
	}
	out, err := scanMessages(rows, min(limit, 64))
	if err != nil {
		return nil, err
	}
	slices.Reverse(out)
	return s.withReactions(ctx, conversationID, out)
}

// MessageByClientID returns ENOTFOUND when the sender has no such message.
func (s *Store) MessageByClientID(ctx context.Context, senderID, clientMessageID string) (chatstate.Message, error) {
	if err := s.check(); err != nil {
		return chatstate.Message{}, err
	}
	if err := chatstate.ValidateID("senderId", senderID); err != nil {
		return chatstate.Message{}, err
	}
	if err := chatstate.ValidateID("clientMessageId", clientMessageID); err != nil {
		return chatstate.Message{}, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+messageColumns+` FROM messages
		WHERE sender_id = ? AND client_message_id = ?`, senderID, clientMessageID)
	if err != nil {
		return chatstate.Message{}, dbErr("message by client id", err)
	}
	out, err := scanMessages(rows, 1)
	if err == nil && len(out) == 1 {
		out, err = s.withReactions(ctx, out[0].ConversationID, out)
	}
	if err != nil {
		return chatstate.Message{}, err
	}
	if len(out) == 0 {
		return chatstate.Message{}, chatstate.Errorf(chatstate.ENOTFOUND, "no message %s from %s", clientMessageID, senderID)
	}
	return out[0], nil
}

// LastSeq is the highest stored seq of a conversation, 0 when none.
func (s *Store) LastSeq(ctx context.Context, conversationID string) (int64, error) {
	if err := s.check(); err != nil {
		return 0, err
	}
	if err := chatstate.ValidateID("conversationId", conversationID); err != nil {
		return 0, err
	}
	var seq int64
	err := s.r.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM messages WHERE conversation_id = ?`, conversationID).Scan(&seq)
	return seq, dbErr("last seq", err)
}
