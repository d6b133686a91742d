package gateway

import (
	"context"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/socketio"
)

// Devices keeps users' push tokens (the store).
type Devices interface {
	SetDeviceToken(ctx context.Context, userID string, t chatstate.DeviceToken) error
}

// Notifier is told about every newly sent message, so members without a
// connection get notified (push.Notifier). maybeOffline are the members
// but the sender that hold no socket on this node.
type Notifier interface {
	MessageSent(msg chatstate.Message, members, maybeOffline []string)
}

// EventNotification carries a notification to a connected user
// (NotifyLive); offline users get it as a push.
const EventNotification = "notification:new"

// NotifyLive emits a notification to the user's connected devices.
func (g *Gateway) NotifyLive(ctx context.Context, n chatstate.Notification) {
	if err := g.BroadcastToUser(ctx, n.UserID, EventNotification, map[string]any{"notification": n}); err != nil {
		g.log.Warn("live notification not sent", "user", n.UserID, "err", err)
	}
}

// handleDeviceRegister stores the push token of the connected device:
// device:register {platform, pushToken}.
func (g *Gateway) handleDeviceRegister(ctx context.Context, cl *client, ev *socketio.Event) (map[string]any, error) {
	if g.deps.Devices == nil {
		return nil, chatstate.Errorf(chatstate.EUNAVAILABLE, "push tokens are not stored on this server")
	}
	var req struct {
		Platform  string `json:"platform"`
		PushToken string `json:"pushToken"`
	}
	if err := decodeArg(ev, &req); err != nil {
		return nil, err
	}
	t := chatstate.DeviceToken{DeviceID: cl.deviceID, Platform: req.Platform, Token: req.PushToken, UpdatedAt: time.Now().UnixMilli()}
	if err := t.Validate(chatstate.MaxPushTokenLen); err != nil {
		return nil, err
	}
	if err := g.deps.Devices.SetDeviceToken(ctx, cl.userID, t); err != nil {
		return nil, err
	}
	return map[string]any{"deviceId": t.DeviceID, "platform": t.Platform}, nil
}

// handleNotificationsList returns the user's in-app notifications, newest
// first: notifications:list {limit?} (at most 100).
func (g *Gateway) handleNotificationsList(ctx context.Context, cl *client, ev *socketio.Event) (map[string]any, error) {
	var req struct {
		Limit int `json:"limit"`
	}
	if len(ev.Args) > 0 {
		if err := decodeArg(ev, &req); err != nil {
			return nil, err
		}
	}
	if req.Limit < 0 || req.Limit > 100 {
		return nil, chatstate.Errorf(chatstate.EINVALID, "limit must be 0..100 (0 means 100)")
	}
	list, err := g.deps.Cache.Notifications(ctx, cl.userID, req.Limit)
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = []chatstate.Notification{}
	}
	return map[string]any{"notifications": list}, nil
}
