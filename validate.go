package chatstate

import (
	"crypto/rand"
	"encoding/hex"
	"slices"
	"time"
	"unicode/utf8"
)

// Size limits on client-controlled values. Ids end up inside Redis keys, so
// they are restricted to a charset that cannot break a key or its hash tag.
const (
	MaxIDLen = 128
)

// ValidateID checks an id (user, device, socket, conversation, client message
// id, action): 1..MaxIDLen bytes of [A-Za-z0-9._@-]. kind names the field in
// the error.
func ValidateID(kind, id string) error {
	if id == "" {
		return Errorf(EINVALID, "%s is required", kind)
	}
	if len(id) > MaxIDLen {
		return Errorf(EINVALID, "%s is longer than %d bytes", kind, MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '_', c == '@', c == '-':
		default:
			return Errorf(EINVALID, "%s contains an invalid character %q (allowed: letters, digits, . _ @ -)", kind, c)
		}
	}
	return nil
}

// ValidateIDs validates every id, drops duplicates (keeping the first
// occurrence's order) and rejects more than max distinct ids.
func ValidateIDs(field string, ids []string, max int) ([]string, error) {
	seen := make(map[string]bool, min(len(ids), max+1))
	out := make([]string, 0, min(len(ids), max+1))
	for _, id := range ids {
		if err := ValidateID(field, id); err != nil {
			return nil, err
		}
		if !seen[id] {
			if len(out) == max {
				return nil, Errorf(ETOOLARGE, "%s has more than %d entries", field, max)
			}
			seen[id] = true
			out = append(out, id)
		}
	}
	return out, nil
}

// MaxSeq bounds seq and createdAt so they stay exact in Lua's doubles.
const MaxSeq = 1 << 53

// Validate checks a message before it is cached or stored: ids, a type
// word, seq and createdAt in range (0 means "to be assigned"), content of
// valid UTF-8 within maxContentBytes.
func (m *Message) Validate(maxContentBytes int) error {
	for _, f := range [...]struct{ kind, id string }{
		{"conversationId", m.ConversationID}, {"senderId", m.SenderID}, {"message id", m.ID}, {"message type", m.Type},
	} {
		if err := ValidateID(f.kind, f.id); err != nil {
			return err
		}
	}
	if m.ClientMessageID != "" {
		if err := ValidateID("clientMessageId", m.ClientMessageID); err != nil {
			return err
		}
	}
	if m.Seq < 0 || m.Seq >= MaxSeq {
		return Errorf(EINVALID, "seq %d out of range", m.Seq)
	}
	if m.CreatedAt < 0 || m.CreatedAt >= MaxSeq {
		return Errorf(EINVALID, "createdAt %d out of range", m.CreatedAt)
	}
	if len(m.Content) > maxContentBytes {
		return Errorf(ETOOLARGE, "message content is %d bytes, the limit is %d", len(m.Content), maxContentBytes)
	}
	if !utf8.ValidString(m.Content) {
		return Errorf(EINVALID, "message content is not valid UTF-8")
	}
	return m.validateEntry()
}

// ValidateClientType checks the type a client gives a message: an id-like
// word that is not reserved for the server's own entries.
func ValidateClientType(t string) error {
	if err := ValidateID("message type", t); err != nil {
		return err
	}
	if slices.Contains(reservedTypes, t) {
		return Errorf(EINVALID, "message type %q is reserved", t)
	}
	return nil
}

// NewID returns a random 24-hex-character id (96 bits) for messages,
// conversations and notifications.
func NewID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Normalize validates a conversation for storing: a valid id, 1..maxMembers
// valid member ids (duplicates dropped, first order kept) and a createdAt
// that is not negative; createdAt 0 becomes now.
func (c *Conversation) Normalize(maxMembers int, now time.Time) error {
	if err := ValidateID("conversation id", c.ID); err != nil {
		return err
	}
	members, err := ValidateIDs("members", c.Members, maxMembers)
	if err != nil {
		return err
	}
	if len(members) == 0 {
		return Errorf(EINVALID, "members must not be empty")
	}
	if c.CreatedAt < 0 || c.CreatedAt >= MaxSeq {
		return Errorf(EINVALID, "createdAt %d out of range", c.CreatedAt)
	}
	if c.CreatedAt == 0 {
		c.CreatedAt = now.UnixMilli()
	}
	c.Members = members
	return nil
}

// Validate checks a push token before it is stored: a valid device id, the
// platform (ios, android or web), and a token of printable ASCII without
// spaces (FCM and APNs tokens are) of at most maxTokenBytes; updatedAt 0
// means now.
func (t *DeviceToken) Validate(maxTokenBytes int) error {
	if err := ValidateID("deviceId", t.DeviceID); err != nil {
		return err
	}
	if err := ValidatePlatform(t.Platform); err != nil {
		return err
	}
	if len(t.Token) > maxTokenBytes {
		return Errorf(ETOOLARGE, "token is %d bytes, the limit is %d", len(t.Token), maxTokenBytes)
	}
	if err := ValidatePushToken(t.Token); err != nil {
		return err
	}
	if t.UpdatedAt < 0 || t.UpdatedAt >= MaxSeq {
		return Errorf(EINVALID, "updatedAt %d out of range", t.UpdatedAt)
	}
	return nil
}
