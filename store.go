package chatstate

import "context"

// Sentinel conflicts of InsertMessages; compare with errors.Is.
var (
	// ErrDuplicateMessage: the sender already stored a message with this
	// ClientMessageID (an idempotent resend). MessageByClientID returns it.
	ErrDuplicateMessage = &Error{Code: ECONFLICT, Message: "a message with this clientMessageId exists"}
	// ErrSeqTaken: another message holds this (ConversationID, Seq); the seq
	// counter must be recovered from the store (LastSeq) before retrying.
	ErrSeqTaken = &Error{Code: ECONFLICT, Message: "seq already used in this conversation"}
)

// MessageStore is the permanent message history.
type MessageStore interface {
	// InsertMessages stores a batch (the send path group-commits concurrent
	// sends). It returns one error per message, nil when stored, or
	// ErrDuplicateMessage / ErrSeqTaken; one message's conflict does not
	// stop the others. A non-nil second value means the batch as a whole
	// failed and nothing can be assumed stored.
	//
	// A stored edit, delete or reaction entry is also applied to its
	// target (Message.TargetSeq/Target) so that reads show the final
	// state: entries may be stored in any seq order, and the stores reach
	// the state of applying them in seq order (edits: the highest seq wins;
	// a delete is final; reactions: the highest seq per (emoji, user)
	// wins, see ReactionState).
	InsertMessages(ctx context.Context, msgs []Message) ([]error, error)
	// MessageByID returns a message with its current state (edited,
	// deleted, reactions); ENOTFOUND when the conversation has no such id.
	MessageByID(ctx context.Context, conversationID, id string) (Message, error)
	// MessagesAfter returns up to limit messages with seq > afterSeq,
	// ascending by seq; a limit over StoreLimits.MaxPageSize is too_large.
	MessagesAfter(ctx context.Context, conversationID string, afterSeq int64, limit int) ([]Message, error)
	// MessagesBefore returns the last limit messages with seq < beforeSeq,
	// ascending by seq.
	MessagesBefore(ctx context.Context, conversationID string, beforeSeq int64, limit int) ([]Message, error)
	// MessageByClientID returns ENOTFOUND when the sender has no such message.
	MessageByClientID(ctx context.Context, senderID, clientMessageID string) (Message, error)
	// LastSeq is the highest stored seq of a conversation, 0 when none.
	LastSeq(ctx context.Context, conversationID string) (int64, error)
}

// ConversationStore is the permanent conversation membership.
type ConversationStore interface {
	// CreateConversation returns ECONFLICT when the id exists. c.ID must be set.
	CreateConversation(ctx context.Context, c Conversation) (Conversation, error)
	// Conversation returns ENOTFOUND for an unknown id.
	Conversation(ctx context.Context, id string) (Conversation, error)
	// IsMember returns ENOTFOUND for an unknown conversation.
	IsMember(ctx context.Context, conversationID, userID string) (bool, error)
	// ConversationsOf lists the ids of a user's conversations.
	ConversationsOf(ctx context.Context, userID string) ([]string, error)
	// UpdateMembers adds change.Added (appended in order) and removes
	// change.Removed, atomically, and returns the conversation after it and
	// the effective change (ids already in, or not in, left out).
	// ENOTFOUND for an unknown id, ETOOLARGE past the members limit,
	// EINVALID when no member would be left or an id is in both lists.
	UpdateMembers(ctx context.Context, id string, change MembersChange) (Conversation, MembersChange, error)
}

// DeviceToken is a push token of one device of a user.
type DeviceToken struct {
	DeviceID  string `json:"deviceId"`
	Platform  string `json:"platform"` // PlatformIOS (APNs), PlatformAndroid or PlatformWeb (FCM)
	Token     string `json:"token"`
	UpdatedAt int64  `json:"updatedAt"` // epoch ms
}

// UserStore is the permanent per-user data.
type UserStore interface {
	// Friends returns the user's friend list (empty for an unknown user).
	Friends(ctx context.Context, userID string) ([]string, error)
	SetFriends(ctx context.Context, userID string, friends []string) error
	SetLastSeen(ctx context.Context, userID string, at int64) error
	// LastSeen returns 0 for a user never seen.
	LastSeen(ctx context.Context, userID string) (int64, error)
	// SetDeviceToken adds or replaces the token of t.DeviceID.
	SetDeviceToken(ctx context.Context, userID string, t DeviceToken) error
	DeviceTokens(ctx context.Context, userID string) ([]DeviceToken, error)
	RemoveDeviceToken(ctx context.Context, userID, deviceID string) error
	// RemoveDeviceTokenIf removes the device's token only while it is still
	// token: a provider reporting an old token gone must not take the one
	// the device registered since.
	RemoveDeviceTokenIf(ctx context.Context, userID, deviceID, token string) error
}

// Store is the persistence layer: MongoDB (mongostore) or embedded SQLite.
// Every implementation enforces StoreLimits the same way.
type Store interface {
	MessageStore
	ConversationStore
	UserStore
	ReadStore
	Close(ctx context.Context) error
}
