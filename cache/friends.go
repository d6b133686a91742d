package cache

import (
	"context"
	"sort"
	"time"

	"github.com/chatstate/chatstate"
)

// friendsSentinel marks a cached list. '~' is outside ValidateID's charset,
// so no friend id can collide with it.
const friendsSentinel = "~cached"

// CacheFriendList replaces the cached friend list of userID for FriendsTTL.
// An empty list is cached too (FriendList then reports found=true). Within
// a few seconds of InvalidateFriendList it silently caches nothing.
func (c *Cache) CacheFriendList(ctx context.Context, userID string, friends []string) error {
	if err := chatstate.ValidateID("userId", userID); err != nil {
		return err
	}
	if len(friends) > c.cfg.MaxFriends {
		return chatstate.Errorf(chatstate.ETOOLARGE, "%d friends, the limit is %d", len(friends), c.cfg.MaxFriends)
	}
	args := make([]string, 0, len(friends)+2)
	args = append(args, ms(c.cfg.FriendsTTL), friendsSentinel)
	for _, f := range friends {
		if err := chatstate.ValidateID("friend id", f); err != nil {
			return err
		}
		args = append(args, f)
	}
	return mapErr(scriptFriendsSet.Exec(ctx, c.client, []string{c.keys.Friends(userID)}, args).Error())
}

// FriendList returns the cached friends of userID, sorted. found is false on
// a cache miss; a cached empty list is found with no friends.
func (c *Cache) FriendList(ctx context.Context, userID string) ([]string, bool, error) {
	if err := chatstate.ValidateID("userId", userID); err != nil {
		return nil, false, err
	}
	members, err := c.client.Do(ctx, c.client.B().Smembers().Key(c.keys.Friends(userID)).Build()).AsStrSlice()
	if err != nil {
		return nil, false, mapErr(err)
	}
	found := false
	friends := make([]string, 0, len(members))
	for _, m := range members {
		if m == friendsSentinel {
			found = true
		} else {
			friends = append(friends, m)
		}
	}
	if !found {
		// Members without the sentinel cannot be written by this package;
		// treat them as a miss rather than a partial list.
		return nil, false, nil
	}
	sort.Strings(friends)
	return friends, true, nil
}

// IsFriend reports whether otherID is in userID's cached friend list; found
// is false on a cache miss (isFriend is then meaningless).
func (c *Cache) IsFriend(ctx context.Context, userID, otherID string) (isFriend, found bool, err error) {
	if err := chatstate.ValidateID("userId", userID); err != nil {
		return false, false, err
	}
	if err := chatstate.ValidateID("friend id", otherID); err != nil {
		return false, false, err
	}
	r, err := c.client.Do(ctx, c.client.B().Smismember().Key(c.keys.Friends(userID)).Member(friendsSentinel, otherID).Build()).AsIntSlice()
	if err != nil {
		return false, false, mapErr(err)
	}
	if len(r) != 2 || r[0] == 0 {
		return false, false, nil
	}
	return r[1] == 1, true, nil
}

// staleFor is how long an invalidated friend list refuses cache fills: longer
// than a store read takes, short enough that reads soon hit the cache again.
const staleFor = 5 * time.Second

// InvalidateFriendList drops the cached list, so the next reads are misses
// (answered by the store). For staleFor it also refuses CacheFriendList, so
// a reader that loaded the list from the store before the write that caused
// this invalidation cannot put the old list back.
func (c *Cache) InvalidateFriendList(ctx context.Context, userID string) error {
	if err := chatstate.ValidateID("userId", userID); err != nil {
		return err
	}
	return mapErr(scriptFriendsInvalidate.Exec(ctx, c.client, []string{c.keys.Friends(userID)}, []string{ms(staleFor)}).Error())
}
