// Package directory answers who belongs to a conversation and who is whose
// friend (chatstate.Directory): reads are cache-aside from the persistence
// store through Redis, writes go to the store and invalidate the cache.
package directory

import (
	"context"
	_ "embed"
	"strconv"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/keys"
	"github.com/chatstate/chatstate/internal/luascript"
	"github.com/redis/rueidis"
)

// Store is the part of the persistence store the directory reads and writes.
type Store interface {
	CreateConversation(ctx context.Context, c chatstate.Conversation) (chatstate.Conversation, error)
	Conversation(ctx context.Context, id string) (chatstate.Conversation, error)
	Friends(ctx context.Context, userID string) ([]string, error)
	SetFriends(ctx context.Context, userID string, friends []string) error
	UpdateMembers(ctx context.Context, id string, change chatstate.MembersChange) (chatstate.Conversation, chatstate.MembersChange, error)
	ConversationsOf(ctx context.Context, userID string) ([]string, error)
}

// FriendCache is the Cache service's friend-list cache (cache.Cache).
type FriendCache interface {
	CacheFriendList(ctx context.Context, userID string, friends []string) error
	FriendList(ctx context.Context, userID string) ([]string, bool, error)
	InvalidateFriendList(ctx context.Context, userID string) error
}

// Config of the directory.
type Config struct {
	KeyPrefix string
	// MembersTTL is how long a conversation's members stay cached; zero
	// means 2 hours.
	MembersTTL time.Duration
	// NotFoundTTL is how long an unknown conversation id is remembered as
	// unknown; zero means 30 seconds. Creating it clears the entry at once.
	NotFoundTTL time.Duration
	// MaxMembers caps a conversation's size; zero means 1000.
	MaxMembers int
	// MaxFriends caps a friend list; zero means 5000.
	MaxFriends int
	// StaleFor is how long a conversation whose members changed refuses
	// cache fills (reads go to the store meanwhile): longer than a fill
	// that read the store before the change can take. Zero means 5 seconds.
	StaleFor time.Duration
}

var (
	//go:embed directory_cache.lua
	cacheSrc    string
	cacheScript = luascript.New("directory_cache", cacheSrc)
	//go:embed directory_invalidate.lua
	invalidateSrc    string
	invalidateScript = luascript.New("directory_invalidate", invalidateSrc)
)

// Directory is a chatstate.Directory over a Store with a Redis cache.
type Directory struct {
	client  rueidis.Client
	keys    keys.Keys
	store   Store
	friends FriendCache
	cfg     Config
}

var _ chatstate.Directory = (*Directory)(nil)

// New returns a directory; it does no I/O.
func New(client rueidis.Client, store Store, friends FriendCache, cfg Config) *Directory {
	if cfg.MembersTTL <= 0 {
		cfg.MembersTTL = 2 * time.Hour
	}
	if cfg.NotFoundTTL <= 0 {
		cfg.NotFoundTTL = 30 * time.Second
	}
	if cfg.MaxMembers <= 0 {
		cfg.MaxMembers = 1000
	}
	if cfg.MaxFriends <= 0 {
		cfg.MaxFriends = 5000
	}
	if cfg.StaleFor <= 0 {
		cfg.StaleFor = 5 * time.Second
	}
	return &Directory{client: client, keys: keys.New(cfg.KeyPrefix), store: store, friends: friends, cfg: cfg}
}

// CreateConversation stores c; an empty ID gets a generated one.
func (d *Directory) CreateConversation(ctx context.Context, c chatstate.Conversation) (chatstate.Conversation, error) {
	if c.ID == "" {
		c.ID = "c-" + chatstate.NewID()
	}
	if err := c.Normalize(d.cfg.MaxMembers, time.Now()); err != nil {
		return c, err
	}
	c, err := d.store.CreateConversation(ctx, c)
	if err != nil {
		return c, err
	}
	// Drop a cached "not found" from reads before the conversation existed.
	return c, luascript.Err(d.client.Do(ctx, d.client.B().Del().Key(d.keys.Members(c.ID)).Build()).Error())
}

// IsMember reports whether userID belongs to the conversation.
func (d *Directory) IsMember(ctx context.Context, convID, userID string) (bool, error) {
	if err := chatstate.ValidateID("userId", userID); err != nil {
		return false, err
	}
	members, err := d.Members(ctx, convID)
	if err != nil {
		return false, err
	}
	for _, m := range members {
		if m == userID {
			return true, nil
		}
	}
	return false, nil
}

// ConversationsOf lists userID's conversations from the store: it is read
// once per user connecting to a node, not per message.
func (d *Directory) ConversationsOf(ctx context.Context, userID string) ([]string, error) {
	if err := chatstate.ValidateID("userId", userID); err != nil {
		return nil, err
	}
	return d.store.ConversationsOf(ctx, userID)
}

// notFound is the cached member set of an unknown conversation; '~' is
// outside the id charset. It keeps clients probing random ids (typing and
// sync are not rate limited) off the store.
const notFound = "~none"

// staleMarker is the member set of a conversation whose members just
// changed (directory_invalidate.lua).
const staleMarker = "~stale"

// Members lists a conversation's members: one SMEMBERS on a hit, the store
// and a cache fill on a miss. An unknown conversation is cached as such for
// NotFoundTTL.
func (d *Directory) Members(ctx context.Context, convID string) ([]string, error) {
	if err := chatstate.ValidateID("conversationId", convID); err != nil {
		return nil, err
	}
	key := d.keys.Members(convID)
	members, err := d.client.Do(ctx, d.client.B().Smembers().Key(key).Build()).AsStrSlice()
	if err != nil {
		return nil, luascript.Err(err)
	}
	if len(members) == 1 && members[0] == notFound {
		return nil, chatstate.Errorf(chatstate.ENOTFOUND, "conversation not found")
	}
	stale := len(members) == 1 && members[0] == staleMarker
	if len(members) > 0 && !stale {
		return members, nil
	}
	c, err := d.store.Conversation(ctx, convID)
	if stale {
		// Just changed: the fill would be refused anyway.
		return c.Members, err
	}
	if chatstate.ErrorCode(err) == chatstate.ENOTFOUND {
		ttl := strconv.FormatInt(d.cfg.NotFoundTTL.Milliseconds(), 10)
		if err := luascript.Err(cacheScript.Exec(ctx, d.client, []string{key}, []string{ttl, notFound}).Error()); err != nil {
			return nil, err
		}
		return nil, chatstate.Errorf(chatstate.ENOTFOUND, "conversation not found")
	}
	if err != nil {
		return nil, err
	}
	args := append([]string{strconv.FormatInt(d.cfg.MembersTTL.Milliseconds(), 10)}, c.Members...)
	if err := luascript.Err(cacheScript.Exec(ctx, d.client, []string{key}, args).Error()); err != nil {
		return nil, err
	}
	return c.Members, nil
}

// UpdateMembers changes a conversation's members in the store and drops
// the cached set, refusing fills for StaleFor: from its return on, every
// node's Members answers the new set.
func (d *Directory) UpdateMembers(ctx context.Context, convID string, change chatstate.MembersChange) (chatstate.Conversation, chatstate.MembersChange, error) {
	if err := chatstate.ValidateID("conversationId", convID); err != nil {
		return chatstate.Conversation{}, chatstate.MembersChange{}, err
	}
	c, eff, err := d.store.UpdateMembers(ctx, convID, change)
	if err != nil || len(eff.Added)+len(eff.Removed) == 0 {
		return c, eff, err
	}
	return c, eff, d.invalidate(ctx, convID)
}

func (d *Directory) invalidate(ctx context.Context, convID string) error {
	ttl := strconv.FormatInt(d.cfg.StaleFor.Milliseconds(), 10)
	return luascript.Err(invalidateScript.Exec(ctx, d.client, []string{d.keys.Members(convID)}, []string{ttl}).Error())
}

// SetFriends replaces userID's friend list in the store and drops the
// cached copy.
func (d *Directory) SetFriends(ctx context.Context, userID string, friends []string) error {
	if err := chatstate.ValidateID("userId", userID); err != nil {
		return err
	}
	friends, err := chatstate.ValidateIDs("friends", friends, d.cfg.MaxFriends)
	if err != nil {
		return err
	}
	if err := d.store.SetFriends(ctx, userID, friends); err != nil {
		return err
	}
	return d.friends.InvalidateFriendList(ctx, userID)
}

// Friends returns userID's friend list from the cache, loading it from the
// store on a miss (an empty list is cached too).
func (d *Directory) Friends(ctx context.Context, userID string) ([]string, error) {
	if err := chatstate.ValidateID("userId", userID); err != nil {
		return nil, err
	}
	friends, found, err := d.friends.FriendList(ctx, userID)
	if err != nil || found {
		return friends, err
	}
	if friends, err = d.store.Friends(ctx, userID); err != nil {
		return nil, err
	}
	return friends, d.friends.CacheFriendList(ctx, userID, friends)
}
