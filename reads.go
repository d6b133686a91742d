package chatstate

import "context"

// ReadStore keeps what the conversation list and read receipts need beyond
// Redis: read positions (so they survive Redis data loss) and the list's
// order, derived from the stored messages.
type ReadStore interface {
	// SetReadPosition raises the user's read position in the conversation
	// to seq and returns the stored position; it never lowers it.
	SetReadPosition(ctx context.Context, conversationID, userID string, seq int64) (int64, error)
	// ReadPositions returns every stored read position of a conversation
	// (user id -> seq), empty for an unknown one.
	ReadPositions(ctx context.Context, conversationID string) (map[string]int64, error)
	// ConversationActivity lists the user's conversations, most recent
	// activity first (ties by id): LastActivity is the CreatedAt of the
	// conversation's last message that BumpsActivity, or of the
	// conversation itself when it has none. Like ConversationsOf it covers
	// at most StoreLimits.MaxConversationsOf conversations, the smallest
	// ids, so the list holds what a gateway subscribes to. It rebuilds the
	// Redis list index, so it may cost O(conversations of the user).
	ConversationActivity(ctx context.Context, userID string) ([]ConversationActivity, error)
}

// ConversationActivity is one entry of ReadStore.ConversationActivity.
type ConversationActivity struct {
	ID           string `json:"id"`
	LastActivity int64  `json:"lastActivity"` // epoch ms
}

// NotCounted lists the types CountsAsUnread refuses; stores filter on it.
var NotCounted = []string{TypeEdit, TypeDelete, TypeReaction, TypeMembers, TypeSkip}

// CountsAsUnread reports whether a message of this type counts in unread
// badges and can be a conversation's lastMessage: not edits, deletions,
// reactions, membership entries or skip markers.
func CountsAsUnread(msgType string) bool {
	switch msgType {
	case TypeEdit, TypeDelete, TypeReaction, TypeMembers, TypeSkip:
		return false
	}
	return true
}

// BumpsActivity reports whether a message of this type moves its
// conversation to the top of the members' lists: counted messages and
// membership changes (an added member sees the conversation at once), not
// edits, deletions or reactions.
func BumpsActivity(msgType string) bool {
	return CountsAsUnread(msgType) || msgType == TypeMembers
}
