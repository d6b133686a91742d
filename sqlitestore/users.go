package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/chatstate/chatstate"
)

// CreateConversation stores c; ECONFLICT when the id exists. Duplicate
// members are dropped keeping the first occurrence's order; CreatedAt 0
// becomes now.
func (s *Store) CreateConversation(ctx context.Context, c chatstate.Conversation) (chatstate.Conversation, error) {
	if err := s.check(); err != nil {
		return chatstate.Conversation{}, err
	}
	if err := c.Normalize(s.cfg.MaxMembers, time.Now()); err != nil {
		return chatstate.Conversation{}, err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return chatstate.Conversation{}, dbErr("begin", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `INSERT INTO conversations (id, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING`, c.ID, c.CreatedAt)
	if err != nil {
		return chatstate.Conversation{}, dbErr("create conversation", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return chatstate.Conversation{}, dbErr("create conversation", err)
	} else if n == 0 {
		return chatstate.Conversation{}, chatstate.Errorf(chatstate.ECONFLICT, "conversation %s exists", c.ID)
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO conversation_members (conversation_id, user_id, pos) VALUES (?, ?, ?)`)
	if err != nil {
		return chatstate.Conversation{}, dbErr("add members", err)
	}
	defer stmt.Close()
	for i, m := range c.Members {
		if _, err := stmt.ExecContext(ctx, c.ID, m, i); err != nil {
			return chatstate.Conversation{}, dbErr("add members", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return chatstate.Conversation{}, dbErr("commit", err)
	}
	return c, nil
}

// Conversation returns ENOTFOUND for an unknown id.
func (s *Store) Conversation(ctx context.Context, id string) (chatstate.Conversation, error) {
	if err := s.check(); err != nil {
		return chatstate.Conversation{}, err
	}
	if err := chatstate.ValidateID("conversation id", id); err != nil {
		return chatstate.Conversation{}, err
	}
	c := chatstate.Conversation{ID: id, Members: []string{}}
	// created_at never changes, so reading the members outside its
	// statement cannot disagree with it.
	err := s.r.QueryRowContext(ctx, `SELECT created_at FROM conversations WHERE id = ?`, id).Scan(&c.CreatedAt)
	if err == sql.ErrNoRows {
		return chatstate.Conversation{}, chatstate.Errorf(chatstate.ENOTFOUND, "no conversation %s", id)
	} else if err != nil {
		return chatstate.Conversation{}, dbErr("conversation", err)
	}
	c.Members, err = s.strings(ctx, `SELECT user_id FROM conversation_members WHERE conversation_id = ? ORDER BY pos`, id)
	if err != nil {
		return chatstate.Conversation{}, err
	}
	return c, nil
}

// IsMember returns ENOTFOUND for an unknown conversation.
func (s *Store) IsMember(ctx context.Context, conversationID, userID string) (bool, error) {
	if err := s.check(); err != nil {
		return false, err
	}
	if err := chatstate.ValidateID("conversation id", conversationID); err != nil {
		return false, err
	}
	if err := chatstate.ValidateID("user id", userID); err != nil {
		return false, err
	}
	var exists, member bool
	err := s.r.QueryRowContext(ctx, `SELECT
		EXISTS (SELECT 1 FROM conversations WHERE id = ?1),
		EXISTS (SELECT 1 FROM conversation_members WHERE conversation_id = ?1 AND user_id = ?2)`,
		conversationID, userID).Scan(&exists, &member)
	if err != nil {
		return false, dbErr("is member", err)
	}
	if !exists {
		return false, chatstate.Errorf(chatstate.ENOTFOUND, "no conversation %s", conversationID)
	}
	return member, nil
}

// ConversationsOf lists the ids of a user's conversations, sorted.
func (s *Store) ConversationsOf(ctx context.Context, userID string) ([]string, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if err := chatstate.ValidateID("user id", userID); err != nil {
		return nil, err
	}
	return s.strings(ctx, `SELECT conversation_id FROM conversation_members WHERE user_id = ? ORDER BY conversation_id LIMIT ?`, userID, s.cfg.MaxConversationsOf)
}

func (s *Store) strings(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, dbErr("query", err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, dbErr("query", err)
		}
		out = append(out, v)
	}
	return out, dbErr("query", rows.Err())
}

// Friends returns the user's friend list, empty for an unknown user.
func (s *Store) Friends(ctx context.Context, userID string) ([]string, error) {
	if err := s.userCheck(userID); err != nil {
		return nil, err
	}
	var raw string
	err := s.r.QueryRowContext(ctx, `SELECT friends FROM users WHERE id = ?`, userID).Scan(&raw)
	if err == sql.ErrNoRows {
		return []string{}, nil
	} else if err != nil {
		return nil, dbErr("friends", err)
	}
	friends := []string{}
	if err := json.Unmarshal([]byte(raw), &friends); err != nil {
		return nil, dbErr("decode friends", err)
	}
	return friends, nil
}

// SetFriends replaces the friend list; duplicates are dropped keeping order.
func (s *Store) SetFriends(ctx context.Context, userID string, friends []string) error {
	if err := s.userCheck(userID); err != nil {
		return err
	}
	friends, err := chatstate.ValidateIDs("friends", friends, s.cfg.MaxFriends)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(friends)
	if err != nil {
		return dbErr("encode friends", err)
	}
	_, err = s.w.ExecContext(ctx, `INSERT INTO users (id, friends) VALUES (?, ?)
		ON CONFLICT (id) DO UPDATE SET friends = excluded.friends`, userID, string(raw))
	return dbErr("set friends", err)
}

// SetLastSeen records at (epoch ms) as the user's last-seen time.
func (s *Store) SetLastSeen(ctx context.Context, userID string, at int64) error {
	if err := s.userCheck(userID); err != nil {
		return err
	}
	if at < 0 {
		return chatstate.Errorf(chatstate.EINVALID, "last seen %d is negative", at)
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO users (id, last_seen) VALUES (?, ?)
		ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen`, userID, at)
	return dbErr("set last seen", err)
}

// LastSeen returns 0 for a user never seen.
func (s *Store) LastSeen(ctx context.Context, userID string) (int64, error) {
	if err := s.userCheck(userID); err != nil {
		return 0, err
	}
	var at int64
	err := s.r.QueryRowContext(ctx, `SELECT last_seen FROM users WHERE id = ?`, userID).Scan(&at)
	if err == sql.ErrNoRows {
		return 0, nil
	}
	return at, dbErr("last seen", err)
}

func (s *Store) userCheck(userID string) error {
	if err := s.check(); err != nil {
		return err
	}
	return chatstate.ValidateID("user id", userID)
}

// SetDeviceToken adds or replaces the token of t.DeviceID; UpdatedAt 0
// becomes now. A new device beyond MaxDeviceTokens evicts the least
// recently updated tokens in the same transaction (chatstate.StoreLimits).
func (s *Store) SetDeviceToken(ctx context.Context, userID string, t chatstate.DeviceToken) error {
	if err := s.userCheck(userID); err != nil {
		return err
	}
	if err := t.Validate(s.cfg.MaxTokenBytes); err != nil {
		return err
	}
	if t.UpdatedAt == 0 {
		t.UpdatedAt = time.Now().UnixMilli()
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return dbErr("begin", err)
	}
	defer tx.Rollback()
	// Keep the MaxDeviceTokens-1 most recent other devices.
	if _, err := tx.ExecContext(ctx, `DELETE FROM device_tokens WHERE user_id = ?1 AND device_id IN (
		SELECT device_id FROM device_tokens WHERE user_id = ?1 AND device_id <> ?2
		ORDER BY updated_at DESC, device_id DESC LIMIT -1 OFFSET ?3)`,
		userID, t.DeviceID, s.cfg.MaxDeviceTokens-1); err != nil {
		return dbErr("evict device tokens", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO device_tokens (user_id, device_id, platform, token, updated_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id, device_id) DO UPDATE SET
		platform = excluded.platform, token = excluded.token, updated_at = excluded.updated_at`,
		userID, t.DeviceID, t.Platform, t.Token, t.UpdatedAt); err != nil {
		return dbErr("set device token", err)
	}
	return dbErr("commit", tx.Commit())
}

// DeviceTokens lists the user's tokens ordered by device id.
func (s *Store) DeviceTokens(ctx context.Context, userID string) ([]chatstate.DeviceToken, error) {
	if err := s.userCheck(userID); err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT device_id, platform, token, updated_at FROM device_tokens
		WHERE user_id = ? ORDER BY device_id`, userID)
	if err != nil {
		return nil, dbErr("device tokens", err)
	}
	defer rows.Close()
	out := []chatstate.DeviceToken{}
	for rows.Next() {
		var t chatstate.DeviceToken
		if err := rows.Scan(&t.DeviceID, &t.Platform, &t.Token, &t.UpdatedAt); err != nil {
			return nil, dbErr("device tokens", err)
		}
		out = append(out, t)
	}
	return out, dbErr("device tokens", rows.Err())
}

// RemoveDeviceToken deletes the device's token; an unknown device is a no-op.
func (s *Store) RemoveDeviceToken(ctx context.Context, userID, deviceID string) error {
	if err := s.userCheck(userID); err != nil {
		return err
	}
	if err := chatstate.ValidateID("deviceId", deviceID); err != nil {
		return err
	}
	_, err := s.w.ExecContext(ctx, `DELETE FROM device_tokens WHERE user_id = ? AND device_id = ?`, userID, deviceID)
	return dbErr("remove device token", err)
}

// RemoveDeviceTokenIf removes the device's token only while it is token.
func (s *Store) RemoveDeviceTokenIf(ctx context.Context, userID, deviceID, token string) error {
	if err := s.userCheck(userID); err != nil {
		return err
	}
	if err := chatstate.ValidateID("deviceId", deviceID); err != nil {
		return err
	}
	_, err := s.w.ExecContext(ctx, `DELETE FROM device_tokens WHERE user_id = ? AND device_id = ? AND token = ?`, userID, deviceID, token)
	return dbErr("remove device token", err)
}

// UpdateMembers changes the members in one transaction (the writer holds the
// write lock throughout, so concurrent changes serialise).
func (s *Store) UpdateMembers(ctx context.Context, id string, change chatstate.MembersChange) (chatstate.Conversation, chatstate.MembersChange, error) {
	none := chatstate.MembersChange{}
	if err := s.check(); err != nil {
		return chatstate.Conversation{}, none, err
	}
	if err := chatstate.ValidateID("conversation id", id); err != nil {
		return chatstate.Conversation{}, none, err
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return chatstate.Conversation{}, none, dbErr("begin", err)
	}
	defer tx.Rollback()
	c := chatstate.Conversation{ID: id}
	err = tx.QueryRowContext(ctx, `SELECT created_at FROM conversations WHERE id = ?`, id).Scan(&c.CreatedAt)
	if err == sql.ErrNoRows {
		return chatstate.Conversation{}, none, chatstate.Errorf(chatstate.ENOTFOUND, "no conversation %s", id)
	} else if err != nil {
		return chatstate.Conversation{}, none, dbErr("conversation", err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT user_id FROM conversation_members WHERE conversation_id = ? ORDER BY pos`, id)
	if err != nil {
		return chatstate.Conversation{}, none, dbErr("members", err)
	}
	for rows.Next() {
		var m string
		if err := rows.Scan(&m); err != nil {
			rows.Close()
			return chatstate.Conversation{}, none, dbErr("members", err)
		}
		c.Members = append(c.Members, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return chatstate.Conversation{}, none, dbErr("members", err)
	}
	eff, err := c.ApplyMembers(change, s.cfg.MaxMembers)
	if err != nil {
		return chatstate.Conversation{}, none, err
	}
	for _, m := range eff.Removed {
		if _, err := tx.ExecContext(ctx, `DELETE FROM conversation_members WHERE conversation_id = ? AND user_id = ?`, id, m); err != nil {
			return chatstate.Conversation{}, none, dbErr("remove member", err)
		}
	}
	for _, m := range eff.Added {
		if _, err := tx.ExecContext(ctx, `INSERT INTO conversation_members (conversation_id, user_id, pos)
			VALUES (?1, ?2, (SELECT coalesce(max(pos), -1) + 1 FROM conversation_members WHERE conversation_id = ?1))`, id, m); err != nil {
			return chatstate.Conversation{}, none, dbErr("add member", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return chatstate.Conversation{}, none, dbErr("commit", err)
	}
	return c, eff, nil
}
