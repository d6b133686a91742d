package cleanup

import (
	"context"

	"github.com/chatstate/chatstate"
)

// processNotifications drains the push queues, high priority first. A user
// with a live connection (invisible ones included) gets the notification
// in-app; only users with no live connection are pushed, so a phone never
// buzzes for a chat that is open on it.
func (c *Cleaner) processNotifications(ctx context.Context, r *Result) error {
	for _, p := range []chatstate.Priority{chatstate.PriorityHigh, chatstate.PriorityNormal} {
		for {
			batch, err := c.deps.Queue.PopNotifications(ctx, p, c.cfg.NotificationBatch)
			if err != nil {
				return err
			}
			for _, n := range batch {
				c.deliver(ctx, n, r)
			}
			if len(batch) < c.cfg.NotificationBatch {
				break
			}
		}
	}
	return nil
}

func (c *Cleaner) deliver(ctx context.Context, n chatstate.Notification, r *Result) {
	if c.deps.State != nil && c.deps.Deliver != nil {
		connected, err := c.deps.State.IsUserConnected(ctx, n.UserID)
		if err == nil && connected {
			if err := c.deps.Deliver(ctx, n); err == nil {
				r.NotificationsInApp++
				return
			}
		}
	}
	if err := c.deps.Pusher.Push(ctx, n); err != nil {
		r.NotificationsFailed++
		c.log.Warn("push failed", "user", n.UserID, "notification", n.ID, "err", err)
		return
	}
	r.NotificationsPushed++
}
