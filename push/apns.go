package push

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/payload"
	"github.com/sideshow/apns2/token"
	"golang.org/x/net/http2"
)

// maxAPNsCollapseID is APNs' limit on apns-collapse-id.
const maxAPNsCollapseID = 64

// APNs priorities: 10 delivers at once, 5 when it suits the device's
// power budget (and is the only one allowed for background pushes).
const (
	apnsPriorityHigh   = 10
	apnsPriorityNormal = 5
)

// APNs sends to ios device tokens through Apple's HTTP/2 provider API with
// token-based authentication (a .p8 key).
type APNs struct {
	client  *apns2.Client
	topic   string
	timeout time.Duration
}

// NewAPNs loads c.APNsKeyFile and returns the provider for c.APNsTopic at
// c.APNsHost. It connects on the first Send and keeps the connection, as
// Apple asks.
func NewAPNs(c Config) (*APNs, error) {
	c = c.withDefaults()
	key, err := loadAPNsKey(c.APNsKeyFile)
	if err != nil {
		return nil, fmt.Errorf("CHATSTATE_APNS_KEY_FILE=%q: %w", c.APNsKeyFile, err)
	}
	client := apns2.NewTokenClient(&token.Token{AuthKey: key, KeyID: c.APNsKeyID, TeamID: c.APNsTeamID})
	client.Host = c.APNsHost
	if c.APNsTLS != nil {
		tr, ok := client.HTTPClient.Transport.(*http2.Transport)
		if !ok {
			return nil, errors.New("apns: the client's transport is not HTTP/2")
		}
		tr.TLSClientConfig = c.APNsTLS.Clone()
	}
	return &APNs{client: client, topic: c.APNsTopic, timeout: c.Timeout}, nil
}

// Name implements chatstate.PushProvider.
func (a *APNs) Name() string { return "apns" }

// Send sends p as an alert (a background push when it has no title or
// body). 410 and the reasons BadDeviceToken, Unregistered and
// ExpiredToken are chatstate.ErrTokenGone; 429, 5xx, IdleTimeout,
// timeouts and network errors are retryable; the rest is permanent.
func (a *APNs) Send(ctx context.Context, p chatstate.Push) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if !isHex(p.Token) {
		// It would go into the URL path; APNs would say BadDeviceToken.
		return gone("apns: device token is not hex")
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	res, err := a.client.PushWithContext(ctx, apnsNotification(p, a.topic))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return retry(0, "apns: no answer within %s", a.timeout)
		}
		return retry(0, "apns: %v", err)
	}
	switch s := res.StatusCode; {
	case s == http.StatusOK:
		return nil
	case s == http.StatusGone, res.Reason == apns2.ReasonBadDeviceToken, res.Reason == apns2.ReasonUnregistered, res.Reason == apns2.ReasonExpiredToken:
		return gone("apns answered %d %s", s, res.Reason)
	case s == http.StatusTooManyRequests, s >= 500, res.Reason == apns2.ReasonIdleTimeout:
		return retry(0, "apns answered %d %s", s, res.Reason)
	default:
		return permanent("apns answered %d %s", s, res.Reason)
	}
}

// apnsNotification maps p: alert title and body, p.Data as top-level
// custom keys, priority 10 or 5, the collapse key as apns-collapse-id.
func apnsNotification(p chatstate.Push, topic string) *apns2.Notification {
	pl := payload.NewPayload()
	n := &apns2.Notification{DeviceToken: p.Token, Topic: topic, CollapseID: collapseID(p.CollapseKey, maxAPNsCollapseID), Payload: pl}
	if p.Title != "" || p.Body != "" {
		pl.AlertTitle(p.Title).AlertBody(p.Body)
		n.PushType = apns2.PushTypeAlert
		n.Priority = apnsPriorityNormal
		if p.Priority == chatstate.PriorityHigh {
			n.Priority = apnsPriorityHigh
		}
	} else {
		pl.ContentAvailable()
		n.PushType = apns2.PushTypeBackground
		n.Priority = apnsPriorityNormal
	}
	for k, v := range p.Data {
		if k != "aps" { // Apple's own dictionary
			pl.Custom(k, v)
		}
	}
	return n
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return s != ""
}
