package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"github.com/chatstate/chatstate"
	"google.golang.org/api/option"
	htransport "google.golang.org/api/transport/http"
)

// fcmScopes are what a messages:send token needs.
var fcmScopes = []string{
	"https://www.googleapis.com/auth/firebase.messaging",
	"https://www.googleapis.com/auth/cloud-platform",
}

// maxWebTopic is Web Push's limit on the Topic header (RFC 8030 5.4).
const maxWebTopic = 32

// FCM sends through Firebase Cloud Messaging's HTTP v1 API with the Admin
// SDK; it delivers to android and web tokens (and ios tokens registered
// through FCM, when called directly).
type FCM struct {
	client  *messaging.Client
	timeout time.Duration
}

// NewFCM signs in with the service account of c.FCMCredentialsFile and
// sends to c.FCMProjectID (default: the account's project) at
// c.FCMEndpoint. Nothing goes over the network until the first Send.
func NewFCM(ctx context.Context, c Config) (*FCM, error) {
	c = c.withDefaults()
	creds, project, err := readFCMCredentials(c.FCMCredentialsFile)
	if err != nil {
		return nil, fmt.Errorf("CHATSTATE_FCM_CREDENTIALS_FILE=%q: %w", c.FCMCredentialsFile, err)
	}
	if c.FCMProjectID != "" {
		project = c.FCMProjectID
	}
	if project == "" {
		return nil, fmt.Errorf("CHATSTATE_FCM_CREDENTIALS_FILE=%q has no project_id: set CHATSTATE_FCM_PROJECT_ID", c.FCMCredentialsFile)
	}
	// The SDK retries a 503 by itself, up to 4 times over 7 s or as long
	// as Retry-After says, inside one Send. The caller's queue owns
	// retries (backoff with jitter, attempt count, dead letter, a lease
	// that must outlast the send), so the transport hides 503s from the
	// SDK's retry check; the error keeps FCM's status and Retry-After.
	auth, err := htransport.NewTransport(ctx, noSDKRetry{http.DefaultTransport},
		option.WithCredentialsJSON(creds), option.WithScopes(fcmScopes...))
	if err != nil {
		return nil, fmt.Errorf("fcm credentials: %w", err)
	}
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: project},
		option.WithHTTPClient(&http.Client{Transport: auth}), option.WithEndpoint(c.FCMEndpoint))
	if err != nil {
		return nil, fmt.Errorf("fcm: %w", err)
	}
	client, err := app.Messaging(ctx)
	if err != nil {
		return nil, fmt.Errorf("fcm: %w", err)
	}
	return &FCM{client: client, timeout: c.Timeout}, nil
}

// noSDKRetry turns FCM's 503 into a 500 before the SDK sees it: the SDK
// retries only 503s, and classifies by the body's status (UNAVAILABLE)
// and FcmError code, which stay as FCM sent them.
type noSDKRetry struct{ base http.RoundTripper }

func (t noSDKRetry) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusServiceUnavailable {
		resp.StatusCode, resp.Status = http.StatusInternalServerError, "500 Internal Server Error (503 from FCM)"
		resp.Header.Set("X-Chatstate-Upstream-Status", "503")
	}
	return resp, err
}

// Name implements chatstate.PushProvider.
func (f *FCM) Name() string { return "fcm" }

// Send sends p as one FCM message. See classifyFCM for the errors.
func (f *FCM) Send(ctx context.Context, p chatstate.Push) error {
	if err := p.Validate(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	_, err := f.client.Send(ctx, fcmMessage(p))
	return classifyFCM(err, f.timeout)
}

// fcmMessage maps p onto the HTTP v1 message: the notification, the data,
// and per platform the priority and collapse key.
func fcmMessage(p chatstate.Push) *messaging.Message {
	m := &messaging.Message{Token: p.Token, Data: p.Data}
	if p.Title != "" || p.Body != "" {
		m.Notification = &messaging.Notification{Title: p.Title, Body: p.Body}
	}
	high := p.Priority == chatstate.PriorityHigh
	switch p.Platform {
	case chatstate.PlatformAndroid:
		m.Android = &messaging.AndroidConfig{Priority: "normal", CollapseKey: p.CollapseKey}
		if high {
			m.Android.Priority = "high"
		}
	case chatstate.PlatformWeb:
		h := map[string]string{"Urgency": "normal"}
		if high {
			h["Urgency"] = "high"
		}
		if t := collapseID(p.CollapseKey, maxWebTopic); t != "" {
			h["Topic"] = t
		}
		m.Webpush = &messaging.WebpushConfig{Headers: h}
	case chatstate.PlatformIOS:
		h := map[string]string{"apns-priority": "5"}
		if high {
			h["apns-priority"] = "10"
		}
		if id := collapseID(p.CollapseKey, maxAPNsCollapseID); id != "" {
			h["apns-collapse-id"] = id
		}
		m.APNS = &messaging.APNSConfig{Headers: h}
	}
	return m
}

// classifyFCM maps an SDK error onto the chatstate.PushProvider contract:
//   - UNREGISTERED, and INVALID_ARGUMENT whose field violation is
//     message.token (a malformed token), are chatstate.ErrTokenGone;
//   - UNAVAILABLE, INTERNAL, QUOTA_EXCEEDED / RESOURCE_EXHAUSTED, other
//     5xx, timeouts and network errors are retryable, with FCM's
//     Retry-After;
//   - the rest is permanent. That includes SENDER_ID_MISMATCH and
//     THIRD_PARTY_AUTH_ERROR: they mean this server's credentials or
//     project are wrong, and removing the tokens would lose every device
//     to a configuration mistake.
func classifyFCM(err error, timeout time.Duration) error {
	if err == nil {
		return nil
	}
	// The SDK quotes non-JSON bodies on a new line; logs want one.
	msg := strings.Join(strings.Fields(err.Error()), " ")
	resp := errorutils.HTTPResponse(err)
	status := 0
	var after time.Duration
	if resp != nil {
		status = resp.StatusCode
		if resp.Header.Get("X-Chatstate-Upstream-Status") == "503" {
			status = http.StatusServiceUnavailable
		}
		after = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	switch {
	case messaging.IsUnregistered(err):
		return gone("fcm: %s", msg)
	case messaging.IsInvalidArgument(err) && tokenViolation(resp):
		return gone("fcm: %s", msg)
	case messaging.IsUnavailable(err), messaging.IsInternal(err), messaging.IsQuotaExceeded(err),
		errorutils.IsUnavailable(err), errorutils.IsInternal(err), errorutils.IsResourceExhausted(err):
		return retry(after, "fcm answered %d: %s", status, msg)
	case errorutils.IsDeadlineExceeded(err), errors.Is(err, context.DeadlineExceeded):
		return retry(0, "fcm: no answer within %s", timeout)
	case errors.Is(err, context.Canceled):
		return retry(0, "fcm: %s", msg)
	case resp == nil && errorutils.IsUnknown(err):
		// A transport error: the SDK wraps those without a response.
		return retry(0, "fcm: %s", msg)
	case status >= 500:
		return retry(after, "fcm answered %d: %s", status, msg)
	case resp == nil:
		// Not an API answer: the SDK refused the message itself.
		return permanent("fcm: %s", msg)
	}
	return permanent("fcm answered %d: %s", status, msg)
}

// tokenViolation reports whether an INVALID_ARGUMENT answer blames the
// registration token (google.rpc.BadRequest field message.token) rather
// than the payload.
func tokenViolation(resp *http.Response) bool {
	if resp == nil || resp.Body == nil {
		return false
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Error struct {
			Details []struct {
				Type            string `json:"@type"`
				FieldViolations []struct {
					Field string `json:"field"`
				} `json:"fieldViolations"`
			} `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return false
	}
	for _, d := range e.Error.Details {
		if d.Type != "type.googleapis.com/google.rpc.BadRequest" {
			continue
		}
		for _, v := range d.FieldViolations {
			if v.Field == "message.token" {
				return true
			}
		}
	}
	return false
}
