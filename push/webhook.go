package push

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/chatstate/chatstate"
)

// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the raw
// request body keyed with the webhook secret.
const SignatureHeader = "X-Chatstate-Signature"

// maxWebhookReply is how much of an answer is read: enough to reuse the
// connection and quote an error, never an unbounded body.
const maxWebhookReply = 64 << 10

// Webhook posts every push to an app backend that delivers it itself.
type Webhook struct {
	url     string
	secret  []byte
	timeout time.Duration
	client  *http.Client
}

// webhookBody is the request body, field for field the contract (see the
// package comment): nothing more, so CollapseKey stays out, and data is
// always an object.
type webhookBody struct {
	ID       string             `json:"id"`
	UserID   string             `json:"userId"`
	DeviceID string             `json:"deviceId"`
	Platform string             `json:"platform"`
	Token    string             `json:"token"`
	Title    string             `json:"title"`
	Body     string             `json:"body"`
	Priority chatstate.Priority `json:"priority"`
	Data     map[string]string  `json:"data"`
}

// NewWebhook returns the webhook provider of c.WebhookURL, signing with
// c.WebhookSecret.
func NewWebhook(c Config) *Webhook {
	c = c.withDefaults()
	return &Webhook{
		url:     c.WebhookURL,
		secret:  []byte(c.WebhookSecret),
		timeout: c.Timeout,
		client: &http.Client{
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
			// A redirected POST would turn into a GET, or re-send the
			// signed body somewhere else: the answer is the 3xx.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// Name implements chatstate.PushProvider.
func (w *Webhook) Name() string { return "webhook" }

// Send posts p. 2xx is delivered, 410 is chatstate.ErrTokenGone, 429 and
// 5xx are retryable (RetryAfter from Retry-After), as are timeouts and
// network errors; anything else, 3xx included, is permanent.
func (w *Webhook) Send(ctx context.Context, p chatstate.Push) error {
	if err := p.Validate(); err != nil {
		return err
	}
	data := p.Data
	if data == nil {
		data = map[string]string{}
	}
	body, err := json.Marshal(webhookBody{ID: p.ID, UserID: p.UserID, DeviceID: p.DeviceID, Platform: p.Platform,
		Token: p.Token, Title: p.Title, Body: p.Body, Priority: p.Priority, Data: data})
	if err != nil {
		return permanent("push webhook: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return permanent("push webhook: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "chatstate-push")
	req.Header.Set(SignatureHeader, Signature(w.secret, body))
	resp, err := w.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return retry(0, "push webhook: no answer within %s", w.timeout)
		}
		return retry(0, "push webhook: %v", err)
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, maxWebhookReply))
	const quote = 200
	if len(snippet) > quote {
		snippet = snippet[:quote]
	}
	switch s := resp.StatusCode; {
	case s/100 == 2:
		return nil
	case s == http.StatusGone:
		return gone("push webhook answered 410")
	case s == http.StatusTooManyRequests || s/100 == 5:
		return retry(retryAfter(resp.Header.Get("Retry-After"), time.Now()), "push webhook answered %d: %q", s, snippet)
	default:
		return permanent("push webhook answered %d: %q", s, snippet)
	}
}

// Signature is the SignatureHeader value of body under secret.
func Signature(secret, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}
