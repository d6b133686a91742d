// Package directory holds conversation membership and friendships in Redis
// sets. It is the interim chatstate.Directory until the persistence store
// owns this data; the gateway only sees the interface.
package directory

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/keys"
	"github.com/chatstate/chatstate/internal/luascript"
	"github.com/redis/rueidis"
)

// Config of the directory.
type Config struct {
	KeyPrefix string
	// MaxMembers caps a conversation's size; zero means 1000.
	MaxMembers int
	// MaxFriends caps a friend list; zero means 5000.
	MaxFriends int
}

var (
	//go:embed directory_create.lua
	createSrc string
	//go:embed directory_ismember.lua
	isMemberSrc string
	//go:embed directory_setfriends.lua
	setFriendsSrc string

	createScript     = luascript.New(createSrc)
	isMemberScript   = luascript.New(isMemberSrc)
	setFriendsScript = luascript.New(setFriendsSrc)
)

// Redis is a chatstate.Directory on Redis sets.
type Redis struct {
	client rueidis.Client
	keys   keys.Keys
	cfg    Config
}

var _ chatstate.Directory = (*Redis)(nil)

// NewRedis returns a directory on client.
func NewRedis(client rueidis.Client, cfg Config) *Redis {
	if cfg.MaxMembers == 0 {
		cfg.MaxMembers = 1000
	}
	if cfg.MaxFriends == 0 {
		cfg.MaxFriends = 5000
	}
	return &Redis{client: client, keys: keys.New(cfg.KeyPrefix), cfg: cfg}
}

// CreateConversation stores c.
func (d *Redis) CreateConversation(ctx context.Context, c chatstate.Conversation) (chatstate.Conversation, error) {
	if c.ID == "" {
		var b [12]byte
		rand.Read(b[:])
		c.ID = "c-" + hex.EncodeToString(b[:])
	} else if err := chatstate.ValidateID("id", c.ID); err != nil {
		return c, err
	}
	members, err := chatstate.ValidateIDs("members", c.Members, d.cfg.MaxMembers)
	if err != nil {
		return c, err
	}
	if len(members) == 0 {
		return c, chatstate.Errorf(chatstate.EINVALID, "members must not be empty")
	}
	c.Members = members
	c.CreatedAt = time.Now().UnixMilli()
	err = createScript.Exec(ctx, d.client, []string{d.keys.Members(c.ID)}, members).Error()
	return c, luascript.Err(err)
}

// IsMember reports whether userID belongs to the conversation.
func (d *Redis) IsMember(ctx context.Context, convID, userID string) (bool, error) {
	if err := chatstate.ValidateID("conversationId", convID); err != nil {
		return false, err
	}
	if err := chatstate.ValidateID("userId", userID); err != nil {
		return false, err
	}
	n, err := isMemberScript.Exec(ctx, d.client, []string{d.keys.Members(convID)}, []string{userID}).AsInt64()
	return n == 1, luascript.Err(err)
}

// Members lists the conversation's members.
func (d *Redis) Members(ctx context.Context, convID string) ([]string, error) {
	if err := chatstate.ValidateID("conversationId", convID); err != nil {
		return nil, err
	}
	m, err := d.client.Do(ctx, d.client.B().Smembers().Key(d.keys.Members(convID)).Build()).AsStrSlice()
	if err != nil {
		return nil, err
	}
	if len(m) == 0 {
		return nil, chatstate.Errorf(chatstate.ENOTFOUND, "conversation not found")
	}
	return m, nil
}

// SetFriends replaces userID's friend list.
func (d *Redis) SetFriends(ctx context.Context, userID string, friends []string) error {
	if err := chatstate.ValidateID("userId", userID); err != nil {
		return err
	}
	friends, err := chatstate.ValidateIDs("friends", friends, d.cfg.MaxFriends)
	if err != nil {
		return err
	}
	return luascript.Err(setFriendsScript.Exec(ctx, d.client, []string{d.keys.Friendships(userID)}, friends).Error())
}

// Friends returns userID's friend list (empty when none were set).
func (d *Redis) Friends(ctx context.Context, userID string) ([]string, error) {
	if err := chatstate.ValidateID("userId", userID); err != nil {
		return nil, err
	}
	return d.client.Do(ctx, d.client.B().Smembers().Key(d.keys.Friendships(userID)).Build()).AsStrSlice()
}
