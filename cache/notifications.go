package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/luascript"
)

// maxPop bounds one PopNotifications call.
const maxPop = 1000

func parsePriority(p chatstate.Priority) (chatstate.Priority, error) {
	switch p {
	case "":
		return chatstate.PriorityNormal, nil
	case chatstate.PriorityHigh, chatstate.PriorityNormal:
		return p, nil
	}
	return "", chatstate.Errorf(chatstate.EINVALID, "unknown priority %q (want high or normal)", p)
}

// QueuePushNotification adds n to its user's list (newest first, capped at
// NotificationLimit) and to the global queue of its priority (capped at
// MaxQueueLength, dropping the oldest). An empty ID gets a random one, an
// empty priority means normal.
//
// The user list ({u:U} slot) and the queue (a global key, another slot) cannot
// be one script on a cluster, so the two scripts travel in one DoMulti: one
// round trip, each half atomic, not both together. CreatedAt (when 0) is
// taken from this node's clock, not Redis TIME, because both copies must
// carry the same JSON and neither script can see the other's clock reading;
// order is by insertion, never by CreatedAt.
func (c *Cache) QueuePushNotification(ctx context.Context, n chatstate.Notification) (chatstate.Notification, error) {
	if err := chatstate.ValidateID("userId", n.UserID); err != nil {
		return chatstate.Notification{}, err
	}
	p, err := parsePriority(n.Priority)
	if err != nil {
		return chatstate.Notification{}, err
	}
	n.Priority = p
	if n.ID == "" {
		n.ID = chatstate.NewID()
	} else if err := chatstate.ValidateID("notification id", n.ID); err != nil {
		return chatstate.Notification{}, err
	}
	if n.CreatedAt < 0 {
		return chatstate.Notification{}, chatstate.Errorf(chatstate.EINVALID, "createdAt must not be negative")
	}
	if n.CreatedAt == 0 {
		n.CreatedAt = time.Now().UnixMilli()
	}
	body, err := json.Marshal(n)
	if err != nil {
		return chatstate.Notification{}, err
	}
	if len(body) > c.cfg.MaxValueBytes {
		return chatstate.Notification{}, chatstate.Errorf(chatstate.ETOOLARGE, "notification is %d bytes, the limit is %d", len(body), c.cfg.MaxValueBytes)
	}
	userKeys := []string{c.keys.Notifications(n.UserID)}
	userArgs := []string{string(body), itoa(int64(c.cfg.NotificationLimit)), ms(c.cfg.NotificationTTL)}
	queueKeys := []string{c.keys.NotificationQueue(string(p))}
	queueArgs := []string{string(body), itoa(int64(c.cfg.MaxQueueLength))}
	// One round trip for both halves; after SCRIPT FLUSH or a failover only
	// the halves that got NOSCRIPT are resent as EVAL.
	res := luascript.Pipeline(ctx, c.client, []luascript.Call{
		{Script: scriptNotificationAdd, Keys: userKeys, Args: userArgs},
		{Script: scriptNotificationEnqueue, Keys: queueKeys, Args: queueArgs},
	})
	if err := res[0].Error(); err != nil {
		return chatstate.Notification{}, mapErr(err)
	}
	dropped, err := res[1].AsInt64()
	if err != nil {
		return chatstate.Notification{}, fmt.Errorf("cache: notification stored for the user but not queued: %w", mapErr(err))
	}
	c.droppedNotifications.Add(dropped)
	return n, nil
}

// DroppedNotifications is how many queue entries this Cache saw trimmed by
// MaxQueueLength since it was created.
func (c *Cache) DroppedNotifications() int64 { return c.droppedNotifications.Load() }

// Notifications returns a user's notifications, newest first. limit 0 (or
// above NotificationLimit) means NotificationLimit.
func (c *Cache) Notifications(ctx context.Context, userID string, limit int) ([]chatstate.Notification, error) {
	if err := chatstate.ValidateID("userId", userID); err != nil {
		return nil, err
	}
	l, err := limitArg("limit", limit, c.cfg.NotificationLimit)
	if err != nil {
		return nil, err
	}
	raws, err := c.client.Do(ctx, c.client.B().Lrange().Key(c.keys.Notifications(userID)).Start(0).Stop(int64(l-1)).Build()).AsStrSlice()
	if err != nil {
		return nil, mapErr(err)
	}
	return decodeNotifications(raws)
}

// PopNotifications removes and returns up to n of the oldest entries of a
// priority queue (n 0 means 100, at most 1000) for the push processor.
func (c *Cache) PopNotifications(ctx context.Context, priority chatstate.Priority, n int) ([]chatstate.Notification, error) {
	if priority == "" {
		return nil, chatstate.Errorf(chatstate.EINVALID, "priority is required")
	}
	p, err := parsePriority(priority)
	if err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, chatstate.Errorf(chatstate.EINVALID, "n must not be negative")
	}
	if n == 0 {
		n = 100
	}
	if n > maxPop {
		n = maxPop
	}
	raws, err := c.client.Do(ctx, c.client.B().Lpop().Key(c.keys.NotificationQueue(string(p))).Count(int64(n)).Build()).AsStrSlice()
	if err != nil && !isNil(err) {
		return nil, mapErr(err)
	}
	return decodeNotifications(raws)
}

func decodeNotifications(raws []string) ([]chatstate.Notification, error) {
	out := make([]chatstate.Notification, 0, len(raws))
	for _, raw := range raws {
		var n chatstate.Notification
		if err := json.Unmarshal([]byte(raw), &n); err != nil {
			return nil, fmt.Errorf("cache: stored notification: %w", err)
		}
		out = append(out, n)
	}
	return out, nil
}
