package sqlitestore

import (
	"context"
	"strings"

	"github.com/chatstate/chatstate"
)

// SetReadPosition raises the user's read position to seq (never lowers it)
// and returns the stored one.
func (s *Store) SetReadPosition(ctx context.Context, conversationID, userID string, seq int64) (int64, error) {
	if err := s.readCheck("conversation id", conversationID, "user id", userID); err != nil {
		return 0, err
	}
	if seq < 0 || seq >= chatstate.MaxSeq {
		return 0, chatstate.Errorf(chatstate.EINVALID, "seq %d out of range", seq)
	}
	var out int64
	err := s.w.QueryRowContext(ctx, `INSERT INTO read_positions (conversation_id, user_id, seq) VALUES (?, ?, ?)
		ON CONFLICT (conversation_id, user_id) DO UPDATE SET seq = max(seq, excluded.seq) RETURNING seq`,
		conversationID, userID, seq).Scan(&out)
	return out, dbErr("set read position", err)
}

// ReadPositions returns the conversation's read positions by user.
func (s *Store) ReadPositions(ctx context.Context, conversationID string) (map[string]int64, error) {
	if err := s.readCheck("conversation id", conversationID); err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT user_id, seq FROM read_positions WHERE conversation_id = ?`, conversationID)
	if err != nil {
		return nil, dbErr("read positions", err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var u string
		var seq int64
		if err := rows.Scan(&u, &seq); err != nil {
			return nil, dbErr("read positions", err)
		}
		out[u] = seq
	}
	return out, dbErr("read positions", rows.Err())
}

// ConversationActivity orders the user's conversations by their last
// message that bumps activity (the (conversation_id, seq) index walked
// backwards from the end), falling back to the creation time.
func (s *Store) ConversationActivity(ctx context.Context, userID string) ([]chatstate.ConversationActivity, error) {
	if err := s.readCheck("user id", userID); err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT c.id, coalesce((SELECT m.created_at FROM messages m
			WHERE m.conversation_id = c.id AND m.type NOT IN (`+notBumping+`) ORDER BY m.seq DESC LIMIT 1), c.created_at) AS at
		FROM (SELECT conversation_id FROM conversation_members WHERE user_id = ?
			ORDER BY conversation_id LIMIT ?) cm JOIN conversations c ON c.id = cm.conversation_id
		ORDER BY at DESC, c.id`, userID, s.cfg.MaxConversationsOf)
	if err != nil {
		return nil, dbErr("conversation activity", err)
	}
	defer rows.Close()
	out := []chatstate.ConversationActivity{}
	for rows.Next() {
		var a chatstate.ConversationActivity
		if err := rows.Scan(&a.ID, &a.LastActivity); err != nil {
			return nil, dbErr("conversation activity", err)
		}
		out = append(out, a)
	}
	return out, dbErr("conversation activity", rows.Err())
}

// notBumping is the SQL list of the types that do not bump activity.
var notBumping = func() string {
	var q []string
	for _, t := range chatstate.NotCounted {
		if !chatstate.BumpsActivity(t) {
			q = append(q, "'"+t+"'")
		}
	}
	return strings.Join(q, ", ")
}()

// readCheck validates ids given as name, value pairs.
func (s *Store) readCheck(ids ...string) error {
	if err := s.check(); err != nil {
		return err
	}
	for i := 0; i+1 < len(ids); i += 2 {
		if err := chatstate.ValidateID(ids[i], ids[i+1]); err != nil {
			return err
		}
	}
	return nil
}
