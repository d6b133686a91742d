package push

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/pushtest"
)

const testSecret = "webhook-secret-0123456789"

// wait bounds every wait on a fake; it only matters when a test fails.
const wait = 10 * time.Second

func messagePush(platform, token string) chatstate.Push {
	return chatstate.Push{
		ID: "n-1", UserID: "bob", DeviceID: "phone-1", Platform: platform, Token: token,
		Title: "Alice", Body: "hi there", Priority: chatstate.PriorityHigh, CollapseKey: "conv-42",
		Data: map[string]string{"conversationId": "conv-42", "messageId": "m-7", "seq": "17", "senderId": "alice"},
	}
}

func newTestWebhook(t *testing.T, timeout time.Duration) (*pushtest.Webhook, *Webhook) {
	fake := pushtest.NewWebhook(t, testSecret)
	return fake, NewWebhook(Config{WebhookURL: fake.URL, WebhookSecret: testSecret, Timeout: timeout})
}

func TestWebhookContract(t *testing.T) {
	fake, w := newTestWebhook(t, 0)
	p := messagePush(chatstate.PlatformAndroid, "fcm-token-1")
	if err := w.Send(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	got := fake.Wait(t, 1, wait)[0]
	if got.Method != http.MethodPost || got.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("method %s, content type %q", got.Method, got.Header.Get("Content-Type"))
	}
	// The signature is exactly sha256=<hex HMAC-SHA256(secret, raw body)>,
	// checked by the fake and recomputed here.
	if !got.SignatureOK || got.Header.Get("X-Chatstate-Signature") != pushtest.Sign(testSecret, got.Body) {
		t.Fatalf("signature %q does not verify", got.Header.Get("X-Chatstate-Signature"))
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(got.Body, &fields); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"body", "data", "deviceId", "id", "platform", "priority", "title", "token", "userId"}; !slices.Equal(keys, want) {
		t.Fatalf("body fields %v, want exactly %v", keys, want)
	}
	want := p
	want.CollapseKey = ""
	if got.DecodeErr != nil || !pushEqual(got.Push, want) {
		t.Fatalf("body %s decodes to %+v (%v), want %+v", got.Body, got.Push, got.DecodeErr, want)
	}

	// Data is always an object, even when the push has none.
	p.Data, p.ID = nil, "n-2"
	if err := w.Send(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	if got := fake.Wait(t, 2, wait)[1]; !json.Valid(got.Body) || string(fieldOf(t, got.Body, "data")) != "{}" {
		t.Fatalf("data of a push without data: %s", got.Body)
	}
}

func fieldOf(t *testing.T, body []byte, name string) json.RawMessage {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	return m[name]
}

func pushEqual(a, b chatstate.Push) bool {
	return reflect.DeepEqual(a, b)
}

func TestWebhookAnswers(t *testing.T) {
	fake, w := newTestWebhook(t, 0)
	cases := []struct {
		name      string
		reply     pushtest.Reply
		gone      bool
		retryable bool
		after     time.Duration
	}{
		{name: "200", reply: pushtest.Reply{}},
		{name: "204", reply: pushtest.Reply{Status: http.StatusNoContent}},
		{name: "410", reply: pushtest.Reply{Status: http.StatusGone}, gone: true},
		{name: "429 with Retry-After", reply: pushtest.Reply{Status: http.StatusTooManyRequests, RetryAfter: 7}, retryable: true, after: 7 * time.Second},
		{name: "500", reply: pushtest.Reply{Status: http.StatusInternalServerError}, retryable: true},
		{name: "503 with Retry-After", reply: pushtest.Reply{Status: http.StatusServiceUnavailable, RetryAfter: 3}, retryable: true, after: 3 * time.Second},
		{name: "400", reply: pushtest.Reply{Status: http.StatusBadRequest, Body: `{"error":"nope"}`}},
		{name: "404", reply: pushtest.Reply{Status: http.StatusNotFound}},
		{name: "302 is not followed", reply: pushtest.Reply{Status: http.StatusFound}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fake.Reply(c.reply)
			err := w.Send(context.Background(), messagePush(chatstate.PlatformIOS, "apns-token"))
			fake.Wait(t, i+1, wait)
			checkOutcome(t, err, c.reply.Status/100 == 2 || c.reply.Status == 0, c.gone, c.retryable)
			var e *chatstate.Error
			if c.retryable && (!errors.As(err, &e) || e.Code != chatstate.EUNAVAILABLE || e.RetryAfter != c.after) {
				t.Fatalf("want unavailable with RetryAfter %s, got %#v", c.after, err)
			}
		})
	}
	if n := len(fake.Requests()); n != len(cases) {
		t.Fatalf("%d requests for %d sends: a redirect was followed or a send repeated", n, len(cases))
	}
}

// checkOutcome asserts which of the three answers of the provider
// contract err is.
func checkOutcome(t *testing.T, err error, ok, gone, retryable bool) {
	t.Helper()
	switch {
	case ok:
		if err != nil {
			t.Fatalf("want delivered, got %v", err)
		}
	case err == nil:
		t.Fatal("want an error, got nil")
	case errors.Is(err, chatstate.ErrTokenGone) != gone:
		t.Fatalf("token gone: want %v, got %v", gone, err)
	case chatstate.Retryable(err) != retryable:
		t.Fatalf("retryable: want %v, got %v", retryable, err)
	case gone && retryable:
		t.Fatal("bad case")
	}
}

func TestWebhookTimeoutAndNetworkErrorRetry(t *testing.T) {
	t.Parallel()
	fake, w := newTestWebhook(t, 2*time.Second)
	fake.Reply(pushtest.Reply{Delay: time.Minute})
	err := w.Send(context.Background(), messagePush(chatstate.PlatformWeb, "web-token"))
	checkOutcome(t, err, false, false, true)
	fake.Wait(t, 1, wait)

	// Nothing listening: a network error, retryable too.
	dead := NewWebhook(Config{WebhookURL: "http://127.0.0.1:1/push", WebhookSecret: testSecret})
	checkOutcome(t, dead.Send(context.Background(), messagePush(chatstate.PlatformWeb, "web-token")), false, false, true)
}

func TestWebhookWrongSecretIsPermanent(t *testing.T) {
	fake := pushtest.NewWebhook(t, testSecret)
	w := NewWebhook(Config{WebhookURL: fake.URL, WebhookSecret: "another-secret-of-16-bytes"})
	err := w.Send(context.Background(), messagePush(chatstate.PlatformWeb, "web-token"))
	checkOutcome(t, err, false, false, false)
	if got := fake.Wait(t, 1, wait)[0]; got.SignatureOK {
		t.Fatal("the fake accepted a signature made with another secret")
	}
}

func TestInvalidPushIsRefusedBeforeSending(t *testing.T) {
	fake, w := newTestWebhook(t, 0)
	for _, p := range []chatstate.Push{
		{},
		func() chatstate.Push { p := messagePush("symbian", "t"); return p }(),
		func() chatstate.Push { p := messagePush(chatstate.PlatformIOS, "has space"); return p }(),
		func() chatstate.Push { p := messagePush(chatstate.PlatformIOS, "t"); p.Priority = "urgent"; return p }(),
	} {
		if err := w.Send(context.Background(), p); chatstate.ErrorCode(err) != chatstate.EINVALID || chatstate.Retryable(err) {
			t.Fatalf("%+v: want invalid, got %v", p, err)
		}
	}
	if n := len(fake.Requests()); n != 0 {
		t.Fatalf("%d invalid pushes were sent", n)
	}
}
