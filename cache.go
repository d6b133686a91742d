package chatstate

import (
	"context"
	"time"
)

// Message is a chat message. Seq is per conversation, strictly increasing.
type Message struct {
	ID              string `json:"id"`
	ConversationID  string `json:"conversationId"`
	SenderID        string `json:"senderId"`
	Content         string `json:"content"`
	Type            string `json:"type"`
	CreatedAt       int64  `json:"createdAt"` // epoch ms
	Seq             int64  `json:"seq"`
	ClientMessageID string `json:"clientMessageId,omitempty"`

	// Timeline entries (docs/timeline.md). Target and TargetSeq: the message
	// an edit, delete or reaction applies to; Remove: a reaction taken back;
	// Members: the change of a members entry.
	Target    string         `json:"target,omitempty"`
	TargetSeq int64          `json:"targetSeq,omitempty"`
	Remove    bool           `json:"remove,omitempty"`
	Members   *MembersChange `json:"members,omitempty"`

	// The state of an original that entries changed: EditedAt (epoch ms) of
	// the last edit, Deleted (content cleared), Reactions.
	EditedAt  int64      `json:"editedAt,omitempty"`
	Deleted   bool       `json:"deleted,omitempty"`
	Reactions *Reactions `json:"reactions,omitempty"`
}

// TypeSkip is the type of a skip marker: the store's placeholder for a seq
// that was reserved but will never hold a message (its send failed, or its
// node died before storing it). The marker takes the seq in the store, so a
// late write of the original cannot fill it after readers moved past it;
// store reads leave markers out. docs/delivery.md.
const TypeSkip = "skip"

// SkipMarker returns the skip marker of seq in a conversation.
func SkipMarker(conversationID string, seq, at int64) Message {
	return Message{ID: NewID(), ConversationID: conversationID, SenderID: "chatstate", Type: TypeSkip, Seq: seq, CreatedAt: at}
}

// Session is one logged-in device of a user.
type Session struct {
	UserID       string            `json:"userId"`
	DeviceID     string            `json:"deviceId"`
	CreatedAt    int64             `json:"createdAt"`    // epoch ms
	LastActivity int64             `json:"lastActivity"` // epoch ms
	ExpiresAt    int64             `json:"expiresAt"`    // epoch ms
	Data         map[string]string `json:"data,omitempty"`
}

// Priority selects a push queue.
type Priority string

const (
	PriorityHigh   Priority = "high"
	PriorityNormal Priority = "normal"
)

// Notification is a push notification for one user.
type Notification struct {
	ID        string            `json:"id"`
	UserID    string            `json:"userId"`
	Priority  Priority          `json:"priority"`
	Title     string            `json:"title,omitempty"`
	Body      string            `json:"body,omitempty"`
	Data      map[string]string `json:"data,omitempty"`
	CreatedAt int64             `json:"createdAt"` // epoch ms
}

// RateLimitResult is the outcome of one sliding-window check.
type RateLimitResult struct {
	Allowed    bool
	Remaining  int
	ResetAt    time.Time     // when the oldest counted hit leaves the window
	RetryAfter time.Duration // zero when Allowed
}

// SecurityEvent is one entry of a user's security log.
type SecurityEvent struct {
	Type     string            `json:"type"`
	At       int64             `json:"at"` // epoch ms
	IP       string            `json:"ip,omitempty"`
	DeviceID string            `json:"deviceId,omitempty"`
	Details  map[string]string `json:"details,omitempty"`
}

// Cache is the Redis cache service of the design.
type Cache interface {
	// AddMessage caches msg. When msg.Seq is 0 it assigns the next seq of the
	// conversation; when msg.ClientMessageID was seen before for the sender it
	// returns the stored message and duplicate=true without changing anything.
	AddMessage(ctx context.Context, msg Message) (stored Message, duplicate bool, err error)
	// Messages returns cached messages with seq > afterSeq, ascending.
	Messages(ctx context.Context, conversationID string, afterSeq int64, limit int) ([]Message, error)

	CreateSession(ctx context.Context, s Session) (Session, error)
	UpdateSessionActivity(ctx context.Context, userID, deviceID string) (Session, error)
	Session(ctx context.Context, userID, deviceID string) (Session, error)
	Sessions(ctx context.Context, userID string) ([]Session, error)
	DeleteSession(ctx context.Context, userID, deviceID string) error

	CacheFriendList(ctx context.Context, userID string, friends []string) error
	// FriendList reports found=false on a cache miss; an empty list is a hit.
	FriendList(ctx context.Context, userID string) (friends []string, found bool, err error)
	InvalidateFriendList(ctx context.Context, userID string) error

	// AddNotification adds n to the user's in-app list; the pushes of the
	// design's queuePushNotification go through the push queue.
	AddNotification(ctx context.Context, n Notification) (Notification, error)
	Notifications(ctx context.Context, userID string, limit int) ([]Notification, error)

	CheckRateLimit(ctx context.Context, userID, action string, limit int, window time.Duration) (RateLimitResult, error)

	LogSecurityEvent(ctx context.Context, userID string, ev SecurityEvent) error
	// RememberDevice records a login from deviceID and reports whether the
	// user has not logged in from it lately (a new device).
	RememberDevice(ctx context.Context, userID, deviceID string) (isNew bool, err error)
	SecurityEvents(ctx context.Context, userID string, limit int) ([]SecurityEvent, error)
}
