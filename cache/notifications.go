package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/chatstate/chatstate"
)

func parsePriority(p chatstate.Priority) (chatstate.Priority, error) {
	switch p {
	case "":
		return chatstate.PriorityNormal, nil
	case chatstate.PriorityHigh, chatstate.PriorityNormal:
		return p, nil
	}
	return "", chatstate.Errorf(chatstate.EINVALID, "unknown priority %q (want high or normal)", p)
}

// AddNotification adds n to its user's in-app list (newest first, capped at
// NotificationLimit). An empty ID gets a random one, an empty priority
// means normal, CreatedAt 0 means now. Pushes to the user's devices go
// through the push queue (push.Notifier.QueuePushNotification, the
// design's queuePushNotification, calls both).
func (c *Cache) AddNotification(ctx context.Context, n chatstate.Notification) (chatstate.Notification, error) {
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
	err = scriptNotificationAdd.Exec(ctx, c.client, []string{c.keys.Notifications(n.UserID)},
		[]string{string(body), itoa(int64(c.cfg.NotificationLimit)), ms(c.cfg.NotificationTTL)}).Error()
	if err != nil {
		return chatstate.Notification{}, mapErr(err)
	}
	return n, nil
}

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
