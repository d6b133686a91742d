package chatstate

// StoreLimits are the limits every Store enforces: one name, one default
// and one behaviour for each, whichever store (sqlitestore and mongostore
// embed it in their Config; internal/storetest checks each limit on both).
// Zero means the default; a negative value is invalid.
//
// Every limit but MaxDeviceTokens refuses what exceeds it with too_large
// and stores nothing of it: a store never silently shortens what it was
// asked to do, so a caller never mistakes a clamped page for the end of
// the history, or a truncated member list for the real one.
type StoreLimits struct {
	// MaxBatch caps the messages of one InsertMessages call; zero means
	// 1000.
	MaxBatch int
	// MaxContentBytes caps a message's content (that message alone is
	// refused, in its slot of the batch result); zero means 64 KiB. The
	// gateway's own limit (16 KiB by default) must stay below it.
	MaxContentBytes int
	// MaxPageSize caps the limit of MessagesAfter and MessagesBefore; zero
	// means 1000.
	MaxPageSize int
	// MaxMembers caps a conversation's members, counted after duplicates
	// are dropped; zero means 1000 (every message carries its recipients
	// in its publication).
	MaxMembers int
	// MaxConversationsOf caps the ids ConversationsOf returns, and the
	// conversations ConversationActivity orders: the smallest ids. A
	// gateway node subscribes to those of a connecting user; zero means
	// 10000.
	MaxConversationsOf int
	// MaxFriends caps a friend list, counted after duplicates are dropped;
	// zero means 5000.
	MaxFriends int
	// MaxDeviceTokens caps a user's push tokens. This one is not refused:
	// registering a new device when the user has MaxDeviceTokens already
	// evicts the least recently updated token (ties: the smallest device
	// id), because a user's abandoned installs must never lock a new phone
	// out of push, and a device still in use registers again on its next
	// connect. Replacing the token of a known device evicts nothing. Zero
	// means 20.
	MaxDeviceTokens int
	// MaxTokenBytes caps one push token; zero means 4096
	// (MaxPushTokenLen).
	MaxTokenBytes int
}

// DefaultMessageContentBytes caps the content of a message sent through
// the message flow (messaging.Config, cache.Config) unless configured
// otherwise; it stays below the stores' DefaultMaxContentBytes.
const DefaultMessageContentBytes = 16 << 10

// Default store limits (StoreLimits).
const (
	DefaultMaxBatch           = 1000
	DefaultMaxContentBytes    = 64 << 10
	DefaultMaxPageSize        = 1000
	DefaultMaxMembers         = 1000
	DefaultMaxConversationsOf = 10000
	DefaultMaxFriends         = 5000
	DefaultMaxDeviceTokens    = 20
	DefaultMaxTokenBytes      = MaxPushTokenLen
)

// WithDefaults returns l with every zero limit set to its default, or
// invalid when one is negative.
func (l StoreLimits) WithDefaults() (StoreLimits, error) {
	for _, f := range [...]struct {
		name string
		v    *int
		def  int
	}{
		{"MaxBatch", &l.MaxBatch, DefaultMaxBatch},
		{"MaxContentBytes", &l.MaxContentBytes, DefaultMaxContentBytes},
		{"MaxPageSize", &l.MaxPageSize, DefaultMaxPageSize},
		{"MaxMembers", &l.MaxMembers, DefaultMaxMembers},
		{"MaxConversationsOf", &l.MaxConversationsOf, DefaultMaxConversationsOf},
		{"MaxFriends", &l.MaxFriends, DefaultMaxFriends},
		{"MaxDeviceTokens", &l.MaxDeviceTokens, DefaultMaxDeviceTokens},
		{"MaxTokenBytes", &l.MaxTokenBytes, DefaultMaxTokenBytes},
	} {
		switch {
		case *f.v < 0:
			return l, Errorf(EINVALID, "store limit %s must not be negative, not %d", f.name, *f.v)
		case *f.v == 0:
			*f.v = f.def
		}
	}
	return l, nil
}

// CheckPageSize is the MaxPageSize rule of MessagesAfter and
// MessagesBefore: limit must be 1..max.
func CheckPageSize(limit, max int) error {
	if limit < 1 {
		return Errorf(EINVALID, "limit must be at least 1, not %d", limit)
	}
	if limit > max {
		return Errorf(ETOOLARGE, "limit %d is more than %d", limit, max)
	}
	return nil
}
