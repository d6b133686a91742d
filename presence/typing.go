package presence

import (
	"context"

	"github.com/chatstate/chatstate/internal/luascript"
)

// SetUserTyping marks userID as typing in conversationID for TypingTTL.
func (s *State) SetUserTyping(ctx context.Context, userID, conversationID string) error {
	if err := validate("userId", userID, "conversationId", conversationID); err != nil {
		return err
	}
	return luascript.Err(s.exec(ctx, luascript.Call{Script: scriptTypeStart, Keys: []string{s.k.Typing(conversationID)},
		Args: []string{userID, s.typingTTL, s.maxTypers}}).Error())
}

// StopUserTyping removes userID's typing entry (a single atomic ZREM).
func (s *State) StopUserTyping(ctx context.Context, userID, conversationID string) error {
	if err := validate("userId", userID, "conversationId", conversationID); err != nil {
		return err
	}
	return luascript.Err(s.c.Do(ctx, s.c.B().Zrem().Key(s.k.Typing(conversationID)).Member(userID).Build()).Error())
}

// TypingUsers lists the users typing in conversationID (at most MaxTypers).
func (s *State) TypingUsers(ctx context.Context, conversationID string) ([]string, error) {
	if err := validate("conversationId", conversationID); err != nil {
		return nil, err
	}
	ids, err := s.exec(ctx, luascript.Call{Script: scriptTypeList, Keys: []string{s.k.Typing(conversationID)}}).AsStrSlice()
	if err != nil {
		return nil, luascript.Err(err)
	}
	if ids == nil {
		ids = []string{}
	}
	return ids, nil
}
