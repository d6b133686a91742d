package chatstate

import (
	"slices"
	"unicode"
	"unicode/utf8"
)

// Timeline entry types. An entry takes the next seq of its conversation and
// goes through the send path like a message (stored, cached, published as
// message:new, replayed by messages:sync); edit, delete and reaction also
// update the message they target (Target, TargetSeq) in the store and in the
// cache, so history shows the final state. Clients cannot send these types.
const (
	TypeEdit     = "edit"     // Content: the new content
	TypeDelete   = "delete"   // no content
	TypeReaction = "reaction" // Content: the emoji; Remove: taken back
	TypeMembers  = "members"  // Members: who was added and removed
)

// Limits of reactions on one message.
const (
	// MaxEmojiBytes bounds a reaction's emoji.
	MaxEmojiBytes = 32
	// MaxReactionsPerUser bounds the distinct emoji one user has on one
	// message.
	MaxReactionsPerUser = 20
	// MaxReactionKinds bounds the distinct emoji on one message.
	MaxReactionKinds = 64
)

// MembersChange is the body of a members entry: the users who joined and
// left at that seq (only effective changes).
type MembersChange struct {
	Added   []string `json:"added"`
	Removed []string `json:"removed"`
}

// NonNil returns c with nil lists made empty, so the JSON shows [] (a
// store may decode an empty list as nil).
func (c MembersChange) NonNil() *MembersChange {
	if c.Added == nil {
		c.Added = []string{}
	}
	if c.Removed == nil {
		c.Removed = []string{}
	}
	return &c
}

// Reactions of a message: emoji -> the users who reacted with it, in the
// order of their (latest) reaction. Message holds a pointer so it stays
// comparable with ==.
type Reactions map[string][]string

// IsTargetEntry reports whether t is a timeline entry type that applies to a
// target message (edit, delete, reaction).
func IsTargetEntry(t string) bool {
	return t == TypeEdit || t == TypeDelete || t == TypeReaction
}

// reservedTypes are the types only the server writes.
var reservedTypes = []string{TypeSkip, TypeEdit, TypeDelete, TypeReaction, TypeMembers}

// ValidateEmoji checks a reaction: 1..MaxEmojiBytes of valid UTF-8 with no
// whitespace or control characters.
func ValidateEmoji(e string) error {
	if e == "" {
		return Errorf(EINVALID, "emoji is required")
	}
	if len(e) > MaxEmojiBytes {
		return Errorf(ETOOLARGE, "emoji is longer than %d bytes", MaxEmojiBytes)
	}
	if !utf8.ValidString(e) {
		return Errorf(EINVALID, "emoji is not valid UTF-8")
	}
	for _, r := range e {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return Errorf(EINVALID, "emoji must not contain spaces or control characters")
		}
	}
	return nil
}

// validateEntry checks the entry fields: only entries carry them, and each
// entry type carries what it needs.
func (m *Message) validateEntry() error {
	switch m.Type {
	case TypeEdit, TypeDelete, TypeReaction:
		if err := ValidateID("target", m.Target); err != nil {
			return err
		}
		if m.TargetSeq < 1 || m.TargetSeq >= MaxSeq {
			return Errorf(EINVALID, "targetSeq %d out of range", m.TargetSeq)
		}
		if m.Seq != 0 && m.TargetSeq >= m.Seq {
			return Errorf(EINVALID, "an entry must come after its target")
		}
		if m.Members != nil {
			return Errorf(EINVALID, "only a members entry carries members")
		}
		if m.Remove && m.Type != TypeReaction {
			return Errorf(EINVALID, "only a reaction can be removed")
		}
		switch m.Type {
		case TypeReaction:
			return ValidateEmoji(m.Content)
		case TypeDelete:
			if m.Content != "" {
				return Errorf(EINVALID, "a delete entry has no content")
			}
		case TypeEdit:
			if m.Content == "" {
				return Errorf(EINVALID, "content is required")
			}
		}
		return nil
	case TypeMembers:
		if m.Members == nil || len(m.Members.Added)+len(m.Members.Removed) == 0 {
			return Errorf(EINVALID, "a members entry needs added or removed members")
		}
		for _, ids := range [][]string{m.Members.Added, m.Members.Removed} {
			for _, id := range ids {
				if err := ValidateID("member", id); err != nil {
					return err
				}
			}
		}
		if m.Target != "" || m.TargetSeq != 0 || m.Remove {
			return Errorf(EINVALID, "a members entry has no target")
		}
		return nil
	}
	if m.Target != "" || m.TargetSeq != 0 || m.Remove || m.Members != nil {
		return Errorf(EINVALID, "only timeline entries carry target, remove or members")
	}
	return nil
}

// UserReactions counts the distinct emoji user has on the message.
func (m *Message) UserReactions(user string) int {
	if m.Reactions == nil {
		return 0
	}
	n := 0
	for _, users := range *m.Reactions {
		if slices.Contains(users, user) {
			n++
		}
	}
	return n
}

// HasReaction reports whether user reacted with emoji.
func (m *Message) HasReaction(emoji, user string) bool {
	return m.Reactions != nil && slices.Contains((*m.Reactions)[emoji], user)
}

// ReactionState is the stored state of one (emoji, user) pair of a message:
// the seq of the latest reaction entry for the pair, doubled, plus one when
// it added the reaction. Stores keep the highest value per pair, so entries
// applied in any order (concurrent sends are stored in any order) end in
// the state of the last one by seq: the state the cache reaches applying
// them in seq order.
func ReactionState(seq int64, remove bool) int64 {
	if remove {
		return seq * 2
	}
	return seq*2 + 1
}

// ReactionPair is one stored (emoji, user) state, see ReactionState.
type ReactionPair struct {
	Emoji, User string
	State       int64
}

// BuildReactions aggregates stored pairs into a message's Reactions: present
// pairs only, users in the order of their latest reaction; nil when none.
func BuildReactions(pairs []ReactionPair) *Reactions {
	slices.SortFunc(pairs, func(a, b ReactionPair) int {
		switch {
		case a.State < b.State:
			return -1
		case a.State > b.State:
			return 1
		}
		return 0
	})
	r := Reactions{}
	for _, p := range pairs {
		if p.State%2 == 1 {
			r[p.Emoji] = append(r[p.Emoji], p.User)
		}
	}
	if len(r) == 0 {
		return nil
	}
	return &r
}

// Apply changes the view of an original message by an entry, as the stores
// and the cache do (the cache's Lua mirrors it in message_lib.lua): an edit
// sets content and editedAt unless the message is deleted; a delete clears
// content, editedAt and reactions for good; a reaction adds (moving the
// user to the end) or removes user from the emoji's list.
func (m *Message) Apply(e Message) {
	if m.Deleted {
		return
	}
	switch e.Type {
	case TypeEdit:
		m.Content, m.EditedAt = e.Content, e.CreatedAt
	case TypeDelete:
		m.Deleted, m.Content, m.EditedAt, m.Reactions = true, "", 0, nil
	case TypeReaction:
		r := Reactions{}
		if m.Reactions != nil {
			for k, v := range *m.Reactions {
				r[k] = slices.Clone(v)
			}
		}
		users := slices.DeleteFunc(r[e.Content], func(u string) bool { return u == e.SenderID })
		if !e.Remove {
			users = append(users, e.SenderID)
		}
		if len(users) == 0 {
			delete(r, e.Content)
		} else {
			r[e.Content] = users
		}
		m.Reactions = nil
		if len(r) > 0 {
			m.Reactions = &r
		}
	}
}

// ApplyMembers validates change (ids, none in both lists, at most maxMembers
// after it, at least one member left), applies it to c.Members (added ids
// appended in order) and returns the effective change: ids already in (or
// not in) the conversation are left out. Both stores use it inside their
// atomic update.
func (c *Conversation) ApplyMembers(change MembersChange, maxMembers int) (MembersChange, error) {
	add, err := ValidateIDs("add", change.Added, maxMembers)
	if err != nil {
		return MembersChange{}, err
	}
	remove, err := ValidateIDs("remove", change.Removed, maxMembers)
	if err != nil {
		return MembersChange{}, err
	}
	for _, id := range add {
		if slices.Contains(remove, id) {
			return MembersChange{}, Errorf(EINVALID, "%s is both added and removed", id)
		}
	}
	eff := MembersChange{Added: []string{}, Removed: []string{}}
	members := slices.Clone(c.Members)
	for _, id := range remove {
		if i := slices.Index(members, id); i >= 0 {
			members = slices.Delete(members, i, i+1)
			eff.Removed = append(eff.Removed, id)
		}
	}
	for _, id := range add {
		if !slices.Contains(members, id) {
			members = append(members, id)
			eff.Added = append(eff.Added, id)
		}
	}
	if len(members) == 0 {
		return MembersChange{}, Errorf(EINVALID, "a conversation keeps at least one member")
	}
	if len(members) > maxMembers {
		return MembersChange{}, Errorf(ETOOLARGE, "%d members, the limit is %d", len(members), maxMembers)
	}
	c.Members = members
	return eff, nil
}
