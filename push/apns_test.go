package push

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/pushtest"
)

const apnsToken = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func apnsConfig(fake *pushtest.APNs, timeout time.Duration) Config {
	return Config{APNsKeyFile: fake.KeyFile, APNsKeyID: fake.KeyID, APNsTeamID: fake.TeamID, APNsTopic: fake.Topic,
		APNsHost: fake.URL, APNsTLS: fake.TLSConfig(), Timeout: timeout}
}

func newTestAPNs(t *testing.T, timeout time.Duration) (*pushtest.APNs, *APNs) {
	fake := pushtest.NewAPNs(t)
	a, err := NewAPNs(apnsConfig(fake, timeout))
	if err != nil {
		t.Fatal(err)
	}
	return fake, a
}

func TestAPNsSendsMappedNotification(t *testing.T) {
	fake, a := newTestAPNs(t, 0)
	p := messagePush(chatstate.PlatformIOS, apnsToken)
	if err := a.Send(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	got := fake.Wait(t, 1, wait)[0]
	if got.Proto != "HTTP/2.0" || got.Token != apnsToken || got.Topic != fake.Topic || got.Priority != "10" || got.CollapseID != "conv-42" || got.PushType != "alert" {
		t.Fatalf("request %s token %s topic %q priority %q collapse %q type %q", got.Proto, got.Token, got.Topic, got.Priority, got.CollapseID, got.PushType)
	}
	alert, _ := got.Aps["alert"].(map[string]any)
	if alert["title"] != "Alice" || alert["body"] != "hi there" {
		t.Fatalf("aps %v", got.Aps)
	}
	for k, v := range p.Data {
		if got.Custom[k] != v {
			t.Fatalf("payload %s: %s is %v, want %q", got.Payload, k, got.Custom[k], v)
		}
	}

	// A group's push: priority 5. A push without text: a background push.
	p.Priority = chatstate.PriorityNormal
	if err := a.Send(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	p.Title, p.Body, p.CollapseKey = "", "", ""
	if err := a.Send(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	reqs := fake.Wait(t, 3, wait)
	if reqs[1].Priority != "5" {
		t.Fatalf("normal priority sent as apns-priority %q", reqs[1].Priority)
	}
	if b := reqs[2]; b.Priority != "5" || b.PushType != "background" || b.Aps["content-available"] != float64(1) || b.CollapseID != "" {
		t.Fatalf("background push: priority %q type %q aps %v collapse %q", b.Priority, b.PushType, b.Aps, b.CollapseID)
	}
}

func TestAPNsErrors(t *testing.T) {
	fake, a := newTestAPNs(t, 0)
	cases := []struct {
		name            string
		reply           pushtest.Reply
		gone, retryable bool
	}{
		{name: "410 Unregistered", reply: pushtest.APNsUnregistered, gone: true},
		{name: "400 BadDeviceToken", reply: pushtest.APNsBadDeviceToken, gone: true},
		{name: "400 BadTopic", reply: pushtest.APNsBadTopic},
		{name: "429 TooManyRequests", reply: pushtest.APNsTooMany, retryable: true},
		{name: "500", reply: pushtest.APNsInternal, retryable: true},
		{name: "503", reply: pushtest.APNsUnavailable, retryable: true},
		{name: "403 Forbidden", reply: pushtest.APNsReason(http.StatusForbidden, "Forbidden")},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fake.Reply(c.reply)
			err := a.Send(context.Background(), messagePush(chatstate.PlatformIOS, apnsToken))
			checkOutcome(t, err, false, c.gone, c.retryable)
			if n := len(fake.Requests()); n != i+1 {
				t.Fatalf("%d requests after %d sends", n, i+1)
			}
		})
	}
	// A token that cannot be an APNs token is gone without a request.
	err := a.Send(context.Background(), messagePush(chatstate.PlatformIOS, "not/hex"))
	checkOutcome(t, err, false, true, false)
	if n := len(fake.Requests()); n != len(cases) {
		t.Fatalf("a malformed token was sent")
	}
}

func TestAPNsAuthIsVerified(t *testing.T) {
	// A key the fake does not know: the fake answers 403
	// InvalidProviderToken, a permanent error (a configuration mistake,
	// never a reason to drop the token).
	fake := pushtest.NewAPNs(t)
	c := apnsConfig(fake, 0)
	c.APNsKeyFile, _ = pushtest.WriteP8Key(t)
	a, err := NewAPNs(c)
	if err != nil {
		t.Fatal(err)
	}
	err = a.Send(context.Background(), messagePush(chatstate.PlatformIOS, apnsToken))
	checkOutcome(t, err, false, false, false)
	if len(fake.Requests()) != 0 {
		t.Fatal("the fake recorded a request with a bad provider token")
	}
	// The right key with the wrong team id is refused too.
	c = apnsConfig(fake, 0)
	c.APNsTeamID = "OTHERTEAM1"
	if a, err = NewAPNs(c); err != nil {
		t.Fatal(err)
	}
	checkOutcome(t, a.Send(context.Background(), messagePush(chatstate.PlatformIOS, apnsToken)), false, false, false)
	if len(fake.Requests()) != 0 {
		t.Fatal("the fake accepted a token with another team id")
	}
}

func TestAPNsTimeoutAndNetworkErrorRetry(t *testing.T) {
	t.Parallel()
	fake, a := newTestAPNs(t, 2*time.Second)
	fake.Reply(pushtest.Reply{Delay: time.Minute})
	checkOutcome(t, a.Send(context.Background(), messagePush(chatstate.PlatformIOS, apnsToken)), false, false, true)
	fake.Wait(t, 1, wait)

	c := apnsConfig(fake, 2*time.Second)
	c.APNsHost = "https://127.0.0.1:1"
	dead, err := NewAPNs(c)
	if err != nil {
		t.Fatal(err)
	}
	checkOutcome(t, dead.Send(context.Background(), messagePush(chatstate.PlatformIOS, apnsToken)), false, false, true)
}
