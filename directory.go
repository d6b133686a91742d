package chatstate

import "context"

// Conversation is a set of members who exchange messages.
type Conversation struct {
	ID        string   `json:"id"`
	Members   []string `json:"members"`
	CreatedAt int64    `json:"createdAt"` // epoch ms
}

// Directory answers who belongs to a conversation and who is whose friend.
// The gateway reads it on every send and presence change, so implementations
// are expected to cache.
type Directory interface {
	// CreateConversation stores c; an empty c.ID gets a generated one.
	CreateConversation(ctx context.Context, c Conversation) (Conversation, error)
	IsMember(ctx context.Context, conversationID, userID string) (bool, error)
	// Members returns ENOTFOUND for an unknown conversation.
	Members(ctx context.Context, conversationID string) ([]string, error)
	// ConversationsOf lists the ids of userID's conversations: a gateway
	// node subscribes to their channels when the user connects.
	ConversationsOf(ctx context.Context, userID string) ([]string, error)
	// UpdateMembers changes the members (see ConversationStore) and
	// returns the conversation after it and the effective change; once it
	// returns, Members answers the new set on every node.
	UpdateMembers(ctx context.Context, conversationID string, change MembersChange) (Conversation, MembersChange, error)
	SetFriends(ctx context.Context, userID string, friends []string) error
	Friends(ctx context.Context, userID string) ([]string, error)
}
