package push

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chatstate/chatstate/internal/pushtest"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// editJSON rewrites a JSON object file with edit applied.
func editJSON(t *testing.T, src string, edit func(m map[string]any)) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, _ = json.Marshal(m)
	return writeFile(t, "edited.json", string(b))
}

func TestFromEnv(t *testing.T) {
	fcmCreds := pushtest.NewFCM(t).CredentialsFile(t)
	noProject := editJSON(t, fcmCreds, func(m map[string]any) { delete(m, "project_id") })
	userCreds := editJSON(t, fcmCreds, func(m map[string]any) { m["type"] = "authorized_user" })
	badKey := editJSON(t, fcmCreds, func(m map[string]any) {
		m["private_key"] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
	})
	p8, _ := pushtest.WriteP8Key(t)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	rsaP8 := writeFile(t, "rsa.p8", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})))
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der384, _ := x509.MarshalPKCS8PrivateKey(p384)
	p384File := writeFile(t, "p384.p8", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der384})))
	notPEM := writeFile(t, "junk", "not a key")
	caFile := pushtest.NewAPNs(t).CAFile(t)
	missing := filepath.Join(t.TempDir(), "missing")

	const secret = "0123456789abcdef"
	webhook := func(kv ...string) map[string]string {
		return with(map[string]string{"CHATSTATE_PUSH_WEBHOOK_URL": "https://app.example.com/push", "CHATSTATE_PUSH_WEBHOOK_SECRET": secret}, kv...)
	}
	fcm := func(kv ...string) map[string]string {
		return with(map[string]string{"CHATSTATE_FCM_CREDENTIALS_FILE": fcmCreds}, kv...)
	}
	apns := func(kv ...string) map[string]string {
		return with(map[string]string{"CHATSTATE_APNS_KEY_FILE": p8, "CHATSTATE_APNS_KEY_ID": "ABC123DEFG", "CHATSTATE_APNS_TEAM_ID": "TEAM123456", "CHATSTATE_APNS_TOPIC": "com.example.chat"}, kv...)
	}
	cases := []struct {
		name string
		env  map[string]string
		err  string // substring of the error; "" means valid
		ok   func(c Config) bool
	}{
		{name: "nothing set: pushes off", env: map[string]string{}, ok: func(c Config) bool { return !c.Configured() }},

		{name: "webhook", env: webhook(), ok: func(c Config) bool {
			return c.WebhookURL == "https://app.example.com/push" && c.WebhookSecret == secret && c.Configured()
		}},
		{name: "webhook http", env: webhook("CHATSTATE_PUSH_WEBHOOK_URL", "http://127.0.0.1:9/hook"), ok: func(c Config) bool { return c.WebhookURL == "http://127.0.0.1:9/hook" }},
		{name: "webhook ftp", env: webhook("CHATSTATE_PUSH_WEBHOOK_URL", "ftp://x/y"), err: `CHATSTATE_PUSH_WEBHOOK_URL="ftp://x/y": want an http:// or https:// URL`},
		{name: "webhook no host", env: webhook("CHATSTATE_PUSH_WEBHOOK_URL", "https:///push"), err: "CHATSTATE_PUSH_WEBHOOK_URL="},
		{name: "webhook not a URL", env: webhook("CHATSTATE_PUSH_WEBHOOK_URL", "app.example.com"), err: "CHATSTATE_PUSH_WEBHOOK_URL="},
		{name: "webhook without secret", env: webhook("CHATSTATE_PUSH_WEBHOOK_SECRET", ""), err: "set CHATSTATE_PUSH_WEBHOOK_SECRET too"},
		{name: "secret without webhook", env: webhook("CHATSTATE_PUSH_WEBHOOK_URL", ""), err: "set CHATSTATE_PUSH_WEBHOOK_URL too"},
		{name: "short secret is hidden", env: webhook("CHATSTATE_PUSH_WEBHOOK_SECRET", "tooshort"), err: "CHATSTATE_PUSH_WEBHOOK_SECRET=(hidden): want at least 16 bytes"},
		{name: "webhook with providers", env: with(webhook(), "CHATSTATE_FCM_CREDENTIALS_FILE", fcmCreds), err: "set either the webhook or the providers"},

		{name: "timeout", env: webhook("CHATSTATE_PUSH_TIMEOUT", "1500ms"), ok: func(c Config) bool { return c.Timeout == 1500*time.Millisecond }},
		{name: "timeout without unit", env: webhook("CHATSTATE_PUSH_TIMEOUT", "5"), err: `CHATSTATE_PUSH_TIMEOUT="5": want a duration from 10ms to 10m0s`},
		{name: "timeout negative", env: webhook("CHATSTATE_PUSH_TIMEOUT", "-1s"), err: "CHATSTATE_PUSH_TIMEOUT="},
		{name: "timeout too long", env: webhook("CHATSTATE_PUSH_TIMEOUT", "1h"), err: "CHATSTATE_PUSH_TIMEOUT="},

		{name: "fcm", env: fcm(), ok: func(c Config) bool { return c.FCMCredentialsFile == fcmCreds && c.FCMProjectID == "" }},
		{name: "fcm missing file", env: fcm("CHATSTATE_FCM_CREDENTIALS_FILE", missing), err: "CHATSTATE_FCM_CREDENTIALS_FILE=" + `"` + missing + `": want a readable service-account JSON file`},
		{name: "fcm not JSON", env: fcm("CHATSTATE_FCM_CREDENTIALS_FILE", notPEM), err: "want a service-account JSON file"},
		{name: "fcm user credentials", env: fcm("CHATSTATE_FCM_CREDENTIALS_FILE", userCreds), err: `"type":"service_account"`},
		{name: "fcm bad private key", env: fcm("CHATSTATE_FCM_CREDENTIALS_FILE", badKey), err: "want an RSA private_key"},
		{name: "fcm without project", env: fcm("CHATSTATE_FCM_CREDENTIALS_FILE", noProject), err: "has no project_id: set CHATSTATE_FCM_PROJECT_ID"},
		{name: "fcm project id", env: fcm("CHATSTATE_FCM_CREDENTIALS_FILE", noProject, "CHATSTATE_FCM_PROJECT_ID", "my-app-123"), ok: func(c Config) bool { return c.FCMProjectID == "my-app-123" }},
		{name: "fcm bad project id", env: fcm("CHATSTATE_FCM_PROJECT_ID", "My_App"), err: `CHATSTATE_FCM_PROJECT_ID="My_App": want a Firebase project id`},
		{name: "fcm project id without credentials", env: map[string]string{"CHATSTATE_FCM_PROJECT_ID": "my-app-123"}, err: "set CHATSTATE_FCM_CREDENTIALS_FILE too"},
		{name: "fcm endpoint", env: fcm("CHATSTATE_FCM_ENDPOINT", "http://127.0.0.1:9/v1/"), ok: func(c Config) bool { return c.FCMEndpoint == "http://127.0.0.1:9/v1" }},
		{name: "fcm endpoint scheme", env: fcm("CHATSTATE_FCM_ENDPOINT", "grpc://fcm"), err: `CHATSTATE_FCM_ENDPOINT="grpc://fcm": want an http:// or https:// URL`},
		{name: "fcm endpoint query", env: fcm("CHATSTATE_FCM_ENDPOINT", "https://h/v1?x=1"), err: "CHATSTATE_FCM_ENDPOINT="},
		{name: "fcm endpoint without credentials", env: map[string]string{"CHATSTATE_FCM_ENDPOINT": "https://h/v1"}, err: "set CHATSTATE_FCM_CREDENTIALS_FILE too"},

		{name: "apns", env: apns(), ok: func(c Config) bool {
			return c.APNsKeyFile == p8 && c.APNsKeyID == "ABC123DEFG" && c.APNsTeamID == "TEAM123456" && c.APNsTopic == "com.example.chat" && c.withDefaults().APNsHost == "https://api.push.apple.com"
		}},
		{name: "apns sandbox", env: apns("CHATSTATE_APNS_SANDBOX", "true"), ok: func(c Config) bool {
			return c.APNsSandbox && c.withDefaults().APNsHost == "https://api.sandbox.push.apple.com"
		}},
		{name: "apns sandbox false", env: apns("CHATSTATE_APNS_SANDBOX", "false"), ok: func(c Config) bool { return !c.APNsSandbox }},
		{name: "apns CA file", env: apns("CHATSTATE_APNS_CA_FILE", caFile), ok: func(c Config) bool { return c.APNsCAFile == caFile }},
		{name: "apns CA file without certificates", env: apns("CHATSTATE_APNS_CA_FILE", notPEM), err: `CHATSTATE_APNS_CA_FILE="` + notPEM + `": want a PEM file of certificates; it has none`},
		{name: "apns CA file missing", env: apns("CHATSTATE_APNS_CA_FILE", missing), err: "CHATSTATE_APNS_CA_FILE="},
		{name: "apns CA file without key", env: map[string]string{"CHATSTATE_APNS_CA_FILE": caFile}, err: "set CHATSTATE_APNS_KEY_FILE too"},
		{name: "apns sandbox bad", env: apns("CHATSTATE_APNS_SANDBOX", "maybe"), err: `CHATSTATE_APNS_SANDBOX="maybe": want true or false`},
		{name: "apns host", env: apns("CHATSTATE_APNS_HOST", "https://127.0.0.1:8443"), ok: func(c Config) bool { return c.withDefaults().APNsHost == "https://127.0.0.1:8443" }},
		{name: "apns host http", env: apns("CHATSTATE_APNS_HOST", "http://api.push.apple.com"), err: `CHATSTATE_APNS_HOST="http://api.push.apple.com": want an https:// URL`},
		{name: "apns host and sandbox", env: apns("CHATSTATE_APNS_HOST", "https://h", "CHATSTATE_APNS_SANDBOX", "true"), err: "both set"},
		{name: "apns missing key file", env: apns("CHATSTATE_APNS_KEY_FILE", missing), err: `CHATSTATE_APNS_KEY_FILE="` + missing + `": want a readable .p8 file`},
		{name: "apns RSA key", env: apns("CHATSTATE_APNS_KEY_FILE", rsaP8), err: "CHATSTATE_APNS_KEY_FILE="},
		{name: "apns P-384 key", env: apns("CHATSTATE_APNS_KEY_FILE", p384File), err: "the key is on P-384"},
		{name: "apns not PEM", env: apns("CHATSTATE_APNS_KEY_FILE", notPEM), err: "CHATSTATE_APNS_KEY_FILE="},
		{name: "apns key id", env: apns("CHATSTATE_APNS_KEY_ID", "ABC"), err: `CHATSTATE_APNS_KEY_ID="ABC": want the key's 10-character id`},
		{name: "apns key id charset", env: apns("CHATSTATE_APNS_KEY_ID", "ABC123DEF!"), err: "CHATSTATE_APNS_KEY_ID="},
		{name: "apns team id", env: apns("CHATSTATE_APNS_TEAM_ID", "TEAM 12345"), err: `CHATSTATE_APNS_TEAM_ID="TEAM 12345": want the 10-character Apple team id`},
		{name: "apns topic", env: apns("CHATSTATE_APNS_TOPIC", "com example"), err: `CHATSTATE_APNS_TOPIC="com example": want the app's bundle id`},
		{name: "apns without ids", env: apns("CHATSTATE_APNS_KEY_ID", "", "CHATSTATE_APNS_TOPIC", ""), err: "set CHATSTATE_APNS_KEY_ID and CHATSTATE_APNS_TOPIC too"},
		{name: "apns ids without key", env: apns("CHATSTATE_APNS_KEY_FILE", ""), err: "set CHATSTATE_APNS_KEY_FILE too"},
		{name: "apns and fcm", env: with(apns(), "CHATSTATE_FCM_CREDENTIALS_FILE", fcmCreds), ok: func(c Config) bool { return c.APNsKeyFile != "" && c.FCMCredentialsFile != "" }},
	}
	tested := map[string]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k := range c.env {
				tested[k] = true
			}
			cfg, err := FromEnv(func(k string) string { return c.env[k] })
			if c.err == "" {
				if err != nil || !c.ok(cfg) {
					t.Fatalf("got %+v, %v", cfg, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("want a one-line error with %q, got %v", c.err, err)
			}
			if strings.Contains(err.Error(), "tooshort") {
				t.Fatalf("the secret is in the error: %v", err)
			}
		})
	}
	for _, name := range Names() {
		if !tested[name] {
			t.Errorf("%s has no case", name)
		}
	}
}

func with(m map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(out, kv[i])
		} else {
			out[kv[i]] = kv[i+1]
		}
	}
	return out
}

// TestNewChecksConfigBuiltInCode: a Config built without FromEnv gets the
// same cross-checks and file checks at New.
func TestNewChecksConfigBuiltInCode(t *testing.T) {
	ctx := context.Background()
	for _, c := range []Config{
		{WebhookURL: "https://h/push"},
		{APNsKeyFile: filepath.Join(t.TempDir(), "missing.p8"), APNsKeyID: "ABC123DEFG", APNsTeamID: "TEAM123456", APNsTopic: "t"},
		{APNsKeyFile: "k.p8"},
		{FCMCredentialsFile: filepath.Join(t.TempDir(), "missing.json")},
		{WebhookURL: "https://h/push", WebhookSecret: "0123456789abcdef", Timeout: -time.Second},
	} {
		if p, err := New(ctx, c); err == nil || p != nil {
			t.Errorf("%+v: want an error, got %v", c, p)
		}
	}
}
