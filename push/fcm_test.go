package push

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/pushtest"
)

// newTestFCM is the FCM provider as FromEnv would build it: the fake's
// service-account file (signing in at the fake's token endpoint) and the
// fake as the endpoint.
func newTestFCM(t *testing.T, timeout time.Duration) (*pushtest.FCM, *FCM) {
	fake := pushtest.NewFCM(t)
	f, err := NewFCM(context.Background(), Config{FCMCredentialsFile: fake.CredentialsFile(t), FCMEndpoint: fake.Endpoint(), Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return fake, f
}

func TestFCMSendsMappedMessage(t *testing.T) {
	fake, f := newTestFCM(t, 0)
	android := messagePush(chatstate.PlatformAndroid, "android-token")
	if err := f.Send(context.Background(), android); err != nil {
		t.Fatal(err)
	}
	got := fake.Wait(t, 1, wait)[0]
	if fake.TokensIssued() != 1 || got.Header.Get("Authorization") == "" {
		t.Fatalf("%d tokens issued: the service account did not sign in at the fake", fake.TokensIssued())
	}
	m := got.Message
	if got.Project != fake.ProjectID || m.Token != "android-token" || m.Notification == nil || m.Notification.Title != "Alice" || m.Notification.Body != "hi there" {
		t.Fatalf("message %s to project %s", got.Raw, got.Project)
	}
	if m.Data["conversationId"] != "conv-42" || m.Data["seq"] != "17" || m.Data["messageId"] != "m-7" || m.Data["senderId"] != "alice" {
		t.Fatalf("data %v", m.Data)
	}
	var raw struct {
		Android struct {
			Priority    string `json:"priority"`
			CollapseKey string `json:"collapse_key"`
		} `json:"android"`
		Webpush struct {
			Headers map[string]string `json:"headers"`
		} `json:"webpush"`
	}
	if err := json.Unmarshal(got.Raw, &raw); err != nil {
		t.Fatal(err)
	}
	if raw.Android.Priority != "high" || raw.Android.CollapseKey != "conv-42" {
		t.Fatalf("android config on the wire: %s", got.Raw)
	}

	// A group's push is normal priority; a web device gets Urgency and a
	// Topic that fits Web Push's rule (at most 32 URL-safe characters).
	web := messagePush(chatstate.PlatformWeb, "web-token")
	web.Priority, web.CollapseKey = chatstate.PriorityNormal, "conv:group.with.a-very-long-conversation-id"
	if err := f.Send(context.Background(), web); err != nil {
		t.Fatal(err)
	}
	got = fake.Wait(t, 2, wait)[1]
	raw.Webpush.Headers = nil
	if err := json.Unmarshal(got.Raw, &raw); err != nil {
		t.Fatal(err)
	}
	h := raw.Webpush.Headers
	if h["Urgency"] != "normal" || len(h["Topic"]) != 32 || h["Topic"] != collapseID(web.CollapseKey, 32) || got.Message.Android != nil {
		t.Fatalf("web config on the wire: %s", got.Raw)
	}
	android.Priority = chatstate.PriorityNormal
	if err := f.Send(context.Background(), android); err != nil {
		t.Fatal(err)
	}
	if got := fake.Wait(t, 3, wait)[2]; got.Message.Android == nil || got.Message.Android.Priority != "normal" {
		t.Fatalf("normal android push: %s", got.Raw)
	}
}

func TestFCMErrors(t *testing.T) {
	fake, f := newTestFCM(t, 0)
	cases := []struct {
		name            string
		reply           pushtest.Reply
		gone, retryable bool
		after           time.Duration
	}{
		{name: "UNREGISTERED", reply: pushtest.FCMUnregistered, gone: true},
		{name: "INVALID_ARGUMENT on the token", reply: pushtest.FCMInvalidToken, gone: true},
		{name: "INVALID_ARGUMENT on the payload", reply: pushtest.FCMInvalidArgument},
		{name: "SENDER_ID_MISMATCH", reply: pushtest.FCMSenderMismatch},
		{name: "UNAVAILABLE", reply: pushtest.FCMUnavailable, retryable: true},
		{name: "UNAVAILABLE with Retry-After", reply: withRetryAfter(pushtest.FCMUnavailable, 9), retryable: true, after: 9 * time.Second},
		{name: "INTERNAL", reply: pushtest.FCMInternal, retryable: true},
		{name: "QUOTA_EXCEEDED", reply: withRetryAfter(pushtest.FCMQuota, 60), retryable: true, after: time.Minute},
		{name: "502 without a body", reply: pushtest.Reply{Status: http.StatusBadGateway, Body: "bad gateway"}, retryable: true},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fake.Reply(c.reply)
			err := f.Send(context.Background(), messagePush(chatstate.PlatformAndroid, "android-token"))
			checkOutcome(t, err, false, c.gone, c.retryable)
			var e *chatstate.Error
			if c.retryable && (!errors.As(err, &e) || e.RetryAfter != c.after) {
				t.Fatalf("want RetryAfter %s, got %#v", c.after, err)
			}
			// One request per Send: the SDK's own retries are off, the
			// queue owns them.
			if n := len(fake.Requests()); n != i+1 {
				t.Fatalf("%d requests after %d sends", n, i+1)
			}
		})
	}
}

func withRetryAfter(r pushtest.Reply, s int) pushtest.Reply {
	r.RetryAfter = s
	return r
}

func TestFCMTimeoutAndNetworkErrorRetry(t *testing.T) {
	t.Parallel()
	// The timeout leaves room to sign in at the fake's token endpoint
	// and reach the send, which then hangs.
	fake, f := newTestFCM(t, 2*time.Second)
	fake.Reply(pushtest.Reply{Delay: time.Minute})
	checkOutcome(t, f.Send(context.Background(), messagePush(chatstate.PlatformAndroid, "android-token")), false, false, true)
	fake.Wait(t, 1, wait)

	// Nothing listening: the SDK retries network errors itself, until
	// the timeout ends the send.
	dead, err := NewFCM(context.Background(), Config{FCMCredentialsFile: fake.CredentialsFile(t), FCMEndpoint: "http://127.0.0.1:1/v1", Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	checkOutcome(t, dead.Send(context.Background(), messagePush(chatstate.PlatformAndroid, "android-token")), false, false, true)
}
