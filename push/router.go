package push

import (
	"context"
	"fmt"
	"strings"

	"github.com/chatstate/chatstate"
)

// ErrNoProvider is returned (wrapped, with the platform) by Router.Send
// and Router.For when no configured provider delivers to the push's
// platform. It is permanent: the caller skips or dead-letters the push.
var ErrNoProvider = &chatstate.Error{Code: chatstate.EINVALID, Message: "no push provider for this platform"}

// Router picks the provider of each push: the webhook when set, for every
// platform (an app backend that delivers itself); otherwise APNs for ios
// and FCM for android and web.
type Router struct {
	Webhook chatstate.PushProvider
	APNs    chatstate.PushProvider
	FCM     chatstate.PushProvider
}

// Name lists the configured providers, e.g. "webhook" or "apns+fcm".
func (r *Router) Name() string {
	if r.Webhook != nil {
		return r.Webhook.Name()
	}
	var names []string
	for _, p := range [...]chatstate.PushProvider{r.APNs, r.FCM} {
		if p != nil {
			names = append(names, p.Name())
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "+")
}

// For returns the provider that delivers p (for per-provider metrics), or
// an error wrapping ErrNoProvider, or the platform's validation error.
func (r *Router) For(p chatstate.Push) (chatstate.PushProvider, error) {
	if err := chatstate.ValidatePlatform(p.Platform); err != nil {
		return nil, err
	}
	var prov chatstate.PushProvider
	switch {
	case r.Webhook != nil:
		prov = r.Webhook
	case p.Platform == chatstate.PlatformIOS:
		prov = r.APNs
	default:
		prov = r.FCM
	}
	if prov == nil {
		return nil, fmt.Errorf("push: platform %s: %w", p.Platform, ErrNoProvider)
	}
	return prov, nil
}

// Send implements chatstate.PushProvider through the provider For picks.
func (r *Router) Send(ctx context.Context, p chatstate.Push) error {
	prov, err := r.For(p)
	if err != nil {
		return err
	}
	return prov.Send(ctx, p)
}
