package push

import (
	"context"
	"errors"
	"testing"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/pushtest"
)

// TestRouterFromEnvPicksProviderByPlatform builds the providers the way
// serve does (FromEnv, then New) against the three fakes: ios goes to
// APNs, android and web to FCM; with a webhook everything goes there.
func TestRouterFromEnvPicksProviderByPlatform(t *testing.T) {
	apns, fcm := pushtest.NewAPNs(t), pushtest.NewFCM(t)
	env := map[string]string{
		"CHATSTATE_APNS_KEY_FILE":        apns.KeyFile,
		"CHATSTATE_APNS_KEY_ID":          apns.KeyID,
		"CHATSTATE_APNS_TEAM_ID":         apns.TeamID,
		"CHATSTATE_APNS_TOPIC":           apns.Topic,
		"CHATSTATE_APNS_HOST":            apns.URL,
		"CHATSTATE_APNS_CA_FILE":         apns.CAFile(t),
		"CHATSTATE_FCM_CREDENTIALS_FILE": fcm.CredentialsFile(t),
		"CHATSTATE_FCM_ENDPOINT":         fcm.Endpoint(),
	}
	c, err := FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	prov, err := New(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if prov.Name() != "apns+fcm" {
		t.Fatalf("name %q", prov.Name())
	}
	r := prov.(*Router)
	ctx := context.Background()
	for _, p := range []chatstate.Push{messagePush(chatstate.PlatformIOS, apnsToken), messagePush(chatstate.PlatformAndroid, "a-token"), messagePush(chatstate.PlatformWeb, "w-token")} {
		if err := prov.Send(ctx, p); err != nil {
			t.Fatalf("%s: %v", p.Platform, err)
		}
		if got, _ := r.For(p); got.Name() != map[string]string{"ios": "apns", "android": "fcm", "web": "fcm"}[p.Platform] {
			t.Fatalf("%s routed to %s", p.Platform, got.Name())
		}
	}
	if a := apns.Wait(t, 1, wait); a[0].Token != apnsToken {
		t.Fatalf("apns got %+v", a[0])
	}
	f := fcm.Wait(t, 2, wait)
	if f[0].Message.Token != "a-token" || f[1].Message.Token != "w-token" {
		t.Fatalf("fcm got %s and %s", f[0].Raw, f[1].Raw)
	}
	if len(apns.Requests()) != 1 || len(fcm.Requests()) != 2 {
		t.Fatalf("apns %d, fcm %d requests", len(apns.Requests()), len(fcm.Requests()))
	}
	if err := prov.Send(ctx, messagePush("blackberry", "t")); chatstate.ErrorCode(err) != chatstate.EINVALID || errors.Is(err, ErrNoProvider) {
		t.Fatalf("unknown platform: %v", err)
	}

	hook := pushtest.NewWebhook(t, testSecret)
	env = map[string]string{"CHATSTATE_PUSH_WEBHOOK_URL": hook.URL, "CHATSTATE_PUSH_WEBHOOK_SECRET": testSecret}
	if c, err = FromEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if prov, err = New(ctx, c); err != nil || prov.Name() != "webhook" {
		t.Fatalf("webhook: %v %v", prov, err)
	}
	for _, platform := range []string{chatstate.PlatformIOS, chatstate.PlatformAndroid, chatstate.PlatformWeb} {
		if err := prov.Send(ctx, messagePush(platform, apnsToken)); err != nil {
			t.Fatal(err)
		}
	}
	for i, got := range hook.Wait(t, 3, wait) {
		if want := []string{"ios", "android", "web"}[i]; got.Push.Platform != want || !got.SignatureOK {
			t.Fatalf("webhook request %d: platform %s, signature ok %v", i, got.Push.Platform, got.SignatureOK)
		}
	}
}

func TestRouterWithoutProviderForPlatform(t *testing.T) {
	apns := pushtest.NewAPNs(t)
	prov, err := New(context.Background(), apnsConfig(apns, 0))
	if err != nil {
		t.Fatal(err)
	}
	if prov.Name() != "apns" {
		t.Fatalf("name %q", prov.Name())
	}
	for _, platform := range []string{chatstate.PlatformAndroid, chatstate.PlatformWeb} {
		err := prov.Send(context.Background(), messagePush(platform, "token"))
		if !errors.Is(err, ErrNoProvider) || chatstate.Retryable(err) || errors.Is(err, chatstate.ErrTokenGone) {
			t.Fatalf("%s without FCM: %v", platform, err)
		}
	}
	if (&Router{}).Name() != "none" {
		t.Fatal("empty router name")
	}
	// Nothing configured: no provider, pushes are off.
	if prov, err := New(context.Background(), Config{}); prov != nil || err != nil {
		t.Fatalf("empty config: %v %v", prov, err)
	}
}
