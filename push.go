package chatstate

import (
	"context"
	"errors"
)

// Push platforms: which provider delivers to a device token.
const (
	PlatformIOS     = "ios"
	PlatformAndroid = "android"
	PlatformWeb     = "web"
)

// MaxPushTokenLen bounds a device's push token. FCM tokens are about 160
// bytes and APNs tokens 64 hex digits today; neither vendor promises a
// fixed length, so the bound is generous.
const MaxPushTokenLen = 4096

// Push is one notification to one device. ID is the notification's id;
// (ID, DeviceID) is the idempotency key of a delivery. The JSON field names
// are those of the push webhook's body (push/webhook.go), which adds
// nothing and drops CollapseKey.
type Push struct {
	ID       string   `json:"id"`
	UserID   string   `json:"userId"`
	DeviceID string   `json:"deviceId"`
	Platform string   `json:"platform"` // PlatformIOS, PlatformAndroid or PlatformWeb
	Token    string   `json:"token"`
	Title    string   `json:"title"`
	Body     string   `json:"body"`
	Priority Priority `json:"priority"`
	// CollapseKey lets a device replace an undelivered or shown
	// notification with a newer one of the same key (one per conversation):
	// FCM's android collapse_key, APNs' apns-collapse-id, the Web Push
	// Topic. The webhook leaves it out.
	CollapseKey string `json:"collapseKey,omitempty"`
	// Data is delivered to the app with the notification; a message's push
	// carries conversationId, messageId, seq and senderId.
	Data map[string]string `json:"data,omitempty"`
}

// PushProvider delivers pushes to one vendor's devices (or to a webhook).
//
// Send's error says what the caller does next:
//   - errors.Is(err, ErrTokenGone): the device's token is dead; remove it.
//   - Retryable(err): try again later, not before RetryAfter of the
//     *Error when it is set (the provider asked for it).
//   - any other error: permanent for this push; dead-letter it.
type PushProvider interface {
	// Name is what the provider is called in logs and metrics.
	Name() string
	Send(ctx context.Context, p Push) error
}

// ErrTokenGone is returned (possibly wrapped) by a PushProvider when the
// vendor says the device token will never work again.
var ErrTokenGone = &Error{Code: ENOTFOUND, Message: "push token is no longer valid"}

// Retryable reports whether err is worth retrying: an *Error with code
// unavailable or rate_limited.
func Retryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.Code == EUNAVAILABLE || e.Code == ERATELIMITED)
}

// ValidatePlatform checks a device's push platform.
func ValidatePlatform(p string) error {
	switch p {
	case PlatformIOS, PlatformAndroid, PlatformWeb:
		return nil
	case "":
		return Errorf(EINVALID, "platform is required (ios, android or web)")
	}
	return Errorf(EINVALID, "platform %q is not one of ios, android or web", p)
}

// ValidatePushToken checks a device's push token: 1..MaxPushTokenLen bytes
// of printable ASCII. It ends up in provider URLs and headers.
func ValidatePushToken(token string) error {
	if token == "" {
		return Errorf(EINVALID, "pushToken is required")
	}
	if len(token) > MaxPushTokenLen {
		return Errorf(EINVALID, "pushToken is longer than %d bytes", MaxPushTokenLen)
	}
	for i := 0; i < len(token); i++ {
		if token[i] <= ' ' || token[i] >= 0x7f {
			return Errorf(EINVALID, "pushToken contains an invalid character %q (allowed: printable ASCII without spaces)", token[i])
		}
	}
	return nil
}

// Validate checks a push before a provider sends it: ids, platform, token
// and priority.
func (p *Push) Validate() error {
	for _, f := range [...]struct{ kind, id string }{{"notification id", p.ID}, {"userId", p.UserID}, {"deviceId", p.DeviceID}} {
		if err := ValidateID(f.kind, f.id); err != nil {
			return err
		}
	}
	if err := ValidatePlatform(p.Platform); err != nil {
		return err
	}
	if err := ValidatePushToken(p.Token); err != nil {
		return err
	}
	if p.Priority != PriorityHigh && p.Priority != PriorityNormal {
		return Errorf(EINVALID, "priority %q is not high or normal", p.Priority)
	}
	return nil
}
