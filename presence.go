package chatstate

import (
	"context"
	"time"
)

// Status is what a user chose to show. Offline is never chosen: it is what
// others see when no device is connected or the user is invisible.
type Status string

const (
	StatusOnline    Status = "online"
	StatusAway      Status = "away"
	StatusBusy      Status = "busy"
	StatusInvisible Status = "invisible"
	StatusOffline   Status = "offline"
)

// ParseStatus validates a status a user may set.
func ParseStatus(s string) (Status, error) {
	switch st := Status(s); st {
	case StatusOnline, StatusAway, StatusBusy, StatusInvisible:
		return st, nil
	}
	return "", Errorf(EINVALID, "unknown status %q (want online, away, busy or invisible)", s)
}

// Presence is the public view of a user: an invisible user appears offline
// with zero devices.
type Presence struct {
	UserID   string `json:"userId"`
	Online   bool   `json:"online"`
	Status   Status `json:"status"`
	LastSeen int64  `json:"lastSeen"` // epoch ms; 0 when never seen
	Devices  int    `json:"devices"`
}

// PresenceView is a user's presence as clients are shown it, keyed by user
// id (presence:get, GET /v1/presence).
type PresenceView struct {
	Online   bool   `json:"online"`
	Status   Status `json:"status"`
	LastSeen int64  `json:"lastSeen"`
	Devices  int    `json:"devices"`
}

// View is p without its user id.
func (p Presence) View() PresenceView {
	return PresenceView{Online: p.Online, Status: p.Status, LastSeen: p.LastSeen, Devices: p.Devices}
}

// PresenceChange is returned by presence writes so the caller can tell
// friends. Changed is true when the public view's Online or Status changed.
type PresenceChange struct {
	Before  Presence
	After   Presence
	Changed bool
	// DeviceKept is set by SetSocketOffline when the device stays
	// registered with another socket (it reconnected, here or on another
	// node): its session must stay too.
	DeviceKept bool
}

// OnlineUsersPage is one page of OnlineUsers. Cursor 0 means the end.
type OnlineUsersPage struct {
	UserIDs []string
	Cursor  uint64
}

// RealTimeState is the presence and typing service of the design.
type RealTimeState interface {
	SetUserOnline(ctx context.Context, userID, deviceID, socketID string) (PresenceChange, error)
	SetUserOffline(ctx context.Context, userID, deviceID string) (PresenceChange, error)
	// SetSocketOffline removes the device only while it is still registered
	// with socketID, so the late disconnect of an old socket does not undo
	// the device's newer connection.
	SetSocketOffline(ctx context.Context, userID, deviceID, socketID string) (PresenceChange, error)
	// TouchDevice refreshes a device's TTL on activity; ENOTFOUND when the
	// device is no longer online (expired, or its node was declared dead).
	TouchDevice(ctx context.Context, userID, deviceID string) error
	UpdateUserStatus(ctx context.Context, userID string, status Status) (PresenceChange, error)
	// IsUserOnline is the public view: an invisible user is not online.
	IsUserOnline(ctx context.Context, userID string) (bool, error)
	// IsUserConnected reports a live device whatever the status; pushes go
	// only to users who are not connected.
	IsUserConnected(ctx context.Context, userID string) (bool, error)
	Presence(ctx context.Context, userIDs ...string) (map[string]Presence, error)
	OnlineUsers(ctx context.Context, cursor uint64, limit int) (OnlineUsersPage, error)

	SetUserTyping(ctx context.Context, userID, conversationID string) error
	StopUserTyping(ctx context.Context, userID, conversationID string) error
	TypingUsers(ctx context.Context, conversationID string) ([]string, error)
}

// SocketRecord is the bookkeeping of one connected socket (the design's
// WebSocketState): who holds it, on which node, from where.
type SocketRecord struct {
	SocketID, UserID, DeviceID string
	Node                       string
	ConnectedAt                int64 // epoch ms
	IP, UserAgent              string
}

// SocketRegistry keeps socket records while their sockets are connected.
type SocketRegistry interface {
	// RegisterSocket records rec for at most ttl, so a crashed node's
	// records go away by themselves.
	RegisterSocket(ctx context.Context, rec SocketRecord, ttl time.Duration) error
	// RemoveSocket deletes the record of a disconnected socket.
	RemoveSocket(ctx context.Context, socketID string) error
}
