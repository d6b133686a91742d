package cache

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/luascript"
)

// ListPage is one page of a user's conversation list.
type ListPage struct {
	// Missing: the list is not cached; fill it (FillConversationList)
	// from the store and read again.
	Missing bool
	// Entries, most recent activity first.
	Entries []chatstate.ConversationActivity
	// Cursor continues after the last entry; "" when this is the last page.
	Cursor string
}

// ConversationPage reads up to limit entries of user's list after cursor
// ("" = from the top): O(limit) Redis work however long the list is.
func (c *Cache) ConversationPage(ctx context.Context, user string, limit int, cursor string) (ListPage, error) {
	if err := validateIDs("userId", user); err != nil {
		return ListPage{}, err
	}
	if limit < 1 {
		return ListPage{}, chatstate.Errorf(chatstate.EINVALID, "limit must be at least 1")
	}
	score, id := "", ""
	if cursor != "" {
		s, i, ok := strings.Cut(cursor, ":")
		n, err := strconv.ParseInt(s, 10, 64)
		if !ok || err != nil || n < 0 || chatstate.ValidateID("cursor", i) != nil {
			return ListPage{}, chatstate.Errorf(chatstate.EINVALID, "cursor is not one this API returned")
		}
		score, id = s, i
	}
	v, err := scriptConvListPage.Exec(ctx, c.client, []string{c.keys.ConvList(user)}, []string{strconv.Itoa(limit), score, id}).ToArray()
	if err != nil {
		return ListPage{}, mapErr(err)
	}
	if len(v) == 0 || len(v)%2 == 0 {
		return ListPage{}, fmt.Errorf("cache: convlist_page: unexpected reply of %d elements", len(v))
	}
	more, err := v[0].AsInt64()
	if err != nil {
		return ListPage{}, err
	}
	if more == -1 {
		return ListPage{Missing: true}, nil
	}
	page := ListPage{Entries: make([]chatstate.ConversationActivity, 0, len(v)/2)}
	for i := 1; i+1 < len(v); i += 2 {
		id, err := v[i].ToString()
		if err != nil {
			return ListPage{}, err
		}
		s, err := v[i+1].ToString()
		if err != nil {
			return ListPage{}, err
		}
		at, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return ListPage{}, fmt.Errorf("cache: convlist_page: score %q: %w", s, err)
		}
		page.Entries = append(page.Entries, chatstate.ConversationActivity{ID: id, LastActivity: int64(at)})
	}
	if more == 1 && len(page.Entries) > 0 {
		last := page.Entries[len(page.Entries)-1]
		page.Cursor = itoa(last.LastActivity) + ":" + last.ID
	}
	return page, nil
}

// FillConversationList caches user's list as the store ordered it; scores
// are raised only, so activity touched meanwhile wins.
func (c *Cache) FillConversationList(ctx context.Context, user string, list []chatstate.ConversationActivity) error {
	if err := validateIDs("userId", user); err != nil {
		return err
	}
	args := make([]string, 0, 1+2*len(list))
	args = append(args, ms(c.cfg.ConvListTTL))
	for _, a := range list {
		if err := chatstate.ValidateID("conversationId", a.ID); err != nil {
			return err
		}
		args = append(args, itoa(max(a.LastActivity, 0)), a.ID)
	}
	return mapErr(scriptConvListFill.Exec(ctx, c.client, []string{c.keys.ConvList(user)}, args).Error())
}

// RemoveFromConversationList drops conv from user's cached list (the user
// left it).
func (c *Cache) RemoveFromConversationList(ctx context.Context, user, conv string) error {
	if err := validateIDs("userId", user, "conversationId", conv); err != nil {
		return err
	}
	return mapErr(c.client.Do(ctx, c.client.B().Zrem().Key(c.keys.ConvList(user)).Member(conv).Build()).Error())
}

// TouchConversation moves conv up the cached lists of users to activity
// at (epoch ms), one round trip; lists not cached stay so.
func (c *Cache) TouchConversation(ctx context.Context, conv string, at int64, users []string) error {
	calls, err := c.touchCalls(conv, at, users)
	if err != nil {
		return err
	}
	var first error
	for _, r := range luascript.Pipeline(ctx, c.client, calls) {
		if err := r.Error(); err != nil && first == nil {
			first = mapErr(err)
		}
	}
	return first
}

// touchCalls are the script calls of TouchConversation.
func (c *Cache) touchCalls(conv string, at int64, users []string) ([]luascript.Call, error) {
	if err := validateIDs("conversationId", conv); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(users))
	for _, u := range users {
		if err := chatstate.ValidateID("userId", u); err != nil {
			return nil, err
		}
		keys = append(keys, c.keys.ConvList(u))
	}
	return luascript.PerKey(c.client, scriptConvListTouch, keys, []string{ms(c.cfg.ConvListTTL), itoa(at), conv}), nil
}
