package push

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/payload"
	"github.com/sideshow/apns2/token"
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
	tlsConfig := c.APNsTLS
	if tlsConfig == nil && c.APNsCAFile != "" {
		pool, err := loadCAFile(c.APNsCAFile)
		if err != nil {
			return nil, fmt.Errorf("CHATSTATE_APNS_CA_FILE=%q: %w", c.APNsCAFile, err)
		}
		tlsConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	client.HTTPClient = &http.Client{Transport: apnsTransport(tlsConfig)}
	return &APNs{client: client, topic: c.APNsTopic, timeout: c.Timeout}, nil
}

// apnsTransport speaks HTTP/2 only, as APNs requires, with the standard
// library's client (apns2's default is x/net's, deprecated there). Pings
// on an idle connection find a dead one before a push waits on it; the
// request's context bounds each push, so the client has no timeout.
func apnsTransport(tlsConfig *tls.Config) *http.Transport {
	var protocols http.Protocols
	protocols.SetHTTP2(true)
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 20 * time.Second, KeepAlive: 15 * time.Second}).DialContext,
		TLSHandshakeTimeout: 20 * time.Second,
		ForceAttemptHTTP2:   true,
		Protocols:           &protocols,
		HTTP2:               &http.HTTP2Config{SendPingTimeout: 15 * time.Second},
		IdleConnTimeout:     time.Hour,
	}
	if tlsConfig != nil {
		tr.TLSClientConfig = tlsConfig.Clone()
	}
	return tr
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
