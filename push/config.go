package push

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/token"
)

// Defaults, each set here only (Config.withDefaults).
const (
	DefaultTimeout     = 5 * time.Second
	DefaultFCMEndpoint = "https://fcm.googleapis.com/v1"
	DefaultAPNsHost    = apns2.HostProduction
	SandboxAPNsHost    = apns2.HostDevelopment
)

// Bounds of CHATSTATE_PUSH_TIMEOUT.
const (
	minTimeout, maxTimeout = 10 * time.Millisecond, 10 * time.Minute
	minWebhookSecret       = 16
)

// Config says which providers deliver pushes. A webhook, when set, gets
// every push and FCM and APNs must stay unset; otherwise APNs (when its
// key is set) delivers to ios devices and FCM (when its credentials are
// set) to android and web ones. Nothing set means pushes are off.
type Config struct {
	// WebhookURL (CHATSTATE_PUSH_WEBHOOK_URL) is an http or https URL
	// that receives every push as a signed POST (webhook.go).
	WebhookURL string
	// WebhookSecret (CHATSTATE_PUSH_WEBHOOK_SECRET) keys the HMAC-SHA256
	// signature; at least 16 bytes, required with WebhookURL.
	WebhookSecret string
	// Timeout (CHATSTATE_PUSH_TIMEOUT) bounds one Send to any provider,
	// connecting and reading the answer included; zero means 5s.
	Timeout time.Duration

	// FCMCredentialsFile (CHATSTATE_FCM_CREDENTIALS_FILE) is a Google
	// service-account JSON key; FCM is on when it is set.
	FCMCredentialsFile string
	// FCMProjectID (CHATSTATE_FCM_PROJECT_ID) is the Firebase project;
	// empty means the credentials' project_id.
	FCMProjectID string
	// FCMEndpoint (CHATSTATE_FCM_ENDPOINT) replaces FCM's API root, for
	// tests; empty means https://fcm.googleapis.com/v1.
	FCMEndpoint string

	// APNsKeyFile (CHATSTATE_APNS_KEY_FILE) is the .p8 token-auth key;
	// APNs is on when it is set, and then APNsKeyID, APNsTeamID and
	// APNsTopic are required.
	APNsKeyFile string
	APNsKeyID   string // CHATSTATE_APNS_KEY_ID: the key's 10-character id
	APNsTeamID  string // CHATSTATE_APNS_TEAM_ID: the 10-character team id
	APNsTopic   string // CHATSTATE_APNS_TOPIC: the app's bundle id
	// APNsHost (CHATSTATE_APNS_HOST) is an https URL replacing APNs' host,
	// for tests; empty means production (https://api.push.apple.com), or
	// the sandbox (https://api.sandbox.push.apple.com) with APNsSandbox.
	APNsHost    string
	APNsSandbox bool // CHATSTATE_APNS_SANDBOX: development builds' tokens

	// APNsCAFile (CHATSTATE_APNS_CA_FILE) is a PEM file of the
	// certificates to trust for APNsHost instead of the system's roots:
	// how a server under test trusts a local APNs fake.
	APNsCAFile string

	// APNsTLS replaces the TLS settings of the APNs connection (and
	// APNsCAFile); nil means the system's roots. Not read from the
	// environment: in-process tests set it to trust their fake.
	APNsTLS *tls.Config
}

// Configured reports whether any provider is set.
func (c Config) Configured() bool {
	return c.WebhookURL != "" || c.FCMCredentialsFile != "" || c.APNsKeyFile != ""
}

func (c Config) withDefaults() Config {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.FCMEndpoint == "" {
		c.FCMEndpoint = DefaultFCMEndpoint
	}
	if c.APNsHost == "" {
		c.APNsHost = DefaultAPNsHost
		if c.APNsSandbox {
			c.APNsHost = SandboxAPNsHost
		}
	}
	return c
}

// New builds the provider c describes: a *Router over the configured
// providers, or nil (and no error) when none is, meaning pushes are off.
func New(ctx context.Context, c Config) (chatstate.PushProvider, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	if !c.Configured() {
		return nil, nil
	}
	c = c.withDefaults()
	r := &Router{}
	if c.WebhookURL != "" {
		r.Webhook = NewWebhook(c)
		return r, nil
	}
	if c.APNsKeyFile != "" {
		a, err := NewAPNs(c)
		if err != nil {
			return nil, err
		}
		r.APNs = a
	}
	if c.FCMCredentialsFile != "" {
		f, err := NewFCM(ctx, c)
		if err != nil {
			return nil, err
		}
		r.FCM = f
	}
	return r, nil
}

// setting is one environment variable; set parses a non-empty value into
// c or says what is allowed ("want ..."), and the caller names the
// variable.
type setting struct {
	name   string
	secret bool // never printed
	set    func(c *Config, v string) error
}

var settings = []setting{
	{name: "CHATSTATE_PUSH_WEBHOOK_URL", set: func(c *Config, v string) error {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
			return errors.New("want an http:// or https:// URL such as https://app.example.com/push")
		}
		c.WebhookURL = v
		return nil
	}},
	{name: "CHATSTATE_PUSH_WEBHOOK_SECRET", secret: true, set: func(c *Config, v string) error {
		if len(v) < minWebhookSecret {
			return fmt.Errorf("want at least %d bytes (it keys the HMAC-SHA256 signature)", minWebhookSecret)
		}
		c.WebhookSecret = v
		return nil
	}},
	{name: "CHATSTATE_PUSH_TIMEOUT", set: func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < minTimeout || d > maxTimeout {
			return fmt.Errorf("want a duration from %s to %s, e.g. 5s", minTimeout, maxTimeout)
		}
		c.Timeout = d
		return nil
	}},
	{name: "CHATSTATE_FCM_CREDENTIALS_FILE", set: func(c *Config, v string) error {
		if _, _, err := readFCMCredentials(v); err != nil {
			return err
		}
		c.FCMCredentialsFile = v
		return nil
	}},
	{name: "CHATSTATE_FCM_PROJECT_ID", set: func(c *Config, v string) error {
		if !isProjectID(v) {
			return errors.New("want a Firebase project id: 6 to 30 lowercase letters, digits or '-', starting with a letter")
		}
		c.FCMProjectID = v
		return nil
	}},
	{name: "CHATSTATE_FCM_ENDPOINT", set: func(c *Config, v string) (err error) {
		c.FCMEndpoint, err = endpointURL(v, "http", "https")
		return err
	}},
	{name: "CHATSTATE_APNS_KEY_FILE", set: func(c *Config, v string) error {
		if _, err := loadAPNsKey(v); err != nil {
			return err
		}
		c.APNsKeyFile = v
		return nil
	}},
	{name: "CHATSTATE_APNS_KEY_ID", set: func(c *Config, v string) error {
		if !isAppleID(v) {
			return errors.New("want the key's 10-character id (letters and digits)")
		}
		c.APNsKeyID = v
		return nil
	}},
	{name: "CHATSTATE_APNS_TEAM_ID", set: func(c *Config, v string) error {
		if !isAppleID(v) {
			return errors.New("want the 10-character Apple team id (letters and digits)")
		}
		c.APNsTeamID = v
		return nil
	}},
	{name: "CHATSTATE_APNS_TOPIC", set: func(c *Config, v string) error {
		if !isBundleID(v) {
			return errors.New("want the app's bundle id, e.g. com.example.chat (letters, digits, '.', '-', '_')")
		}
		c.APNsTopic = v
		return nil
	}},
	{name: "CHATSTATE_APNS_HOST", set: func(c *Config, v string) (err error) {
		// APNs is HTTP/2 over TLS only.
		c.APNsHost, err = endpointURL(v, "https")
		return err
	}},
	{name: "CHATSTATE_APNS_CA_FILE", set: func(c *Config, v string) error {
		if _, err := loadCAFile(v); err != nil {
			return err
		}
		c.APNsCAFile = v
		return nil
	}},
	{name: "CHATSTATE_APNS_SANDBOX", set: func(c *Config, v string) error {
		switch strings.ToLower(v) {
		case "true", "1", "yes":
			c.APNsSandbox = true
		case "false", "0", "no":
			c.APNsSandbox = false
		default:
			return errors.New("want true or false")
		}
		return nil
	}},
}

// Names lists the environment variables FromEnv reads.
func Names() []string {
	out := make([]string, len(settings))
	for i, s := range settings {
		out[i] = s.name
	}
	return out
}

// FromEnv reads and validates the push settings. An error is one line
// naming the variable, its value (secrets hidden) and what is allowed.
func FromEnv(getenv func(string) string) (Config, error) {
	var c Config
	for _, s := range settings {
		v := getenv(s.name)
		if v == "" {
			continue
		}
		if err := s.set(&c, v); err != nil {
			shown := fmt.Sprintf("%q", v)
			if s.secret {
				shown = "(hidden)"
			}
			return Config{}, fmt.Errorf("%s=%s: %w", s.name, shown, err)
		}
	}
	if err := c.check(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// check validates what depends on more than one setting.
func (c Config) check() error {
	switch {
	case c.WebhookURL != "" && c.WebhookSecret == "":
		return errors.New("CHATSTATE_PUSH_WEBHOOK_URL is set: set CHATSTATE_PUSH_WEBHOOK_SECRET too (it signs every request)")
	case c.WebhookURL == "" && c.WebhookSecret != "":
		return errors.New("CHATSTATE_PUSH_WEBHOOK_SECRET is set: set CHATSTATE_PUSH_WEBHOOK_URL too")
	case c.WebhookURL != "" && (c.FCMCredentialsFile != "" || c.APNsKeyFile != ""):
		return errors.New("CHATSTATE_PUSH_WEBHOOK_URL is set with CHATSTATE_FCM_CREDENTIALS_FILE or CHATSTATE_APNS_KEY_FILE: the webhook receives every push, so set either the webhook or the providers")
	case c.Timeout < 0:
		return fmt.Errorf("push timeout %s: want a positive duration", c.Timeout)
	}
	if c.FCMCredentialsFile == "" {
		if c.FCMProjectID != "" || (c.FCMEndpoint != "" && c.FCMEndpoint != DefaultFCMEndpoint) {
			return errors.New("CHATSTATE_FCM_PROJECT_ID or CHATSTATE_FCM_ENDPOINT is set: set CHATSTATE_FCM_CREDENTIALS_FILE too")
		}
	} else if c.FCMProjectID == "" {
		if _, project, err := readFCMCredentials(c.FCMCredentialsFile); err != nil {
			return fmt.Errorf("CHATSTATE_FCM_CREDENTIALS_FILE=%q: %w", c.FCMCredentialsFile, err)
		} else if project == "" {
			return fmt.Errorf("CHATSTATE_FCM_CREDENTIALS_FILE=%q has no project_id: set CHATSTATE_FCM_PROJECT_ID", c.FCMCredentialsFile)
		}
	}
	apnsSet := c.APNsKeyID != "" || c.APNsTeamID != "" || c.APNsTopic != "" || c.APNsHost != "" || c.APNsSandbox || c.APNsCAFile != ""
	if c.APNsKeyFile == "" && apnsSet {
		return errors.New("CHATSTATE_APNS_KEY_ID, _TEAM_ID, _TOPIC, _HOST, _CA_FILE or _SANDBOX is set: set CHATSTATE_APNS_KEY_FILE too")
	}
	if c.APNsKeyFile != "" {
		var missing []string
		for _, f := range [...]struct{ name, v string }{{"CHATSTATE_APNS_KEY_ID", c.APNsKeyID}, {"CHATSTATE_APNS_TEAM_ID", c.APNsTeamID}, {"CHATSTATE_APNS_TOPIC", c.APNsTopic}} {
			if f.v == "" {
				missing = append(missing, f.name)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("CHATSTATE_APNS_KEY_FILE is set: set %s too", strings.Join(missing, " and "))
		}
		if c.APNsHost != "" && c.APNsSandbox {
			return errors.New("CHATSTATE_APNS_HOST and CHATSTATE_APNS_SANDBOX are both set: the host decides; set one of them")
		}
	}
	return nil
}

// loadAPNsKey reads a .p8 token-auth key: ES256 needs P-256.
func loadAPNsKey(path string) (*ecdsa.PrivateKey, error) {
	key, err := token.AuthKeyFromFile(path)
	if err == nil && key.Curve != elliptic.P256() {
		err = fmt.Errorf("the key is on %s", key.Curve.Params().Name)
	}
	if err != nil {
		return nil, fmt.Errorf("want a readable .p8 file with an ECDSA P-256 key in PKCS#8 PEM (%v)", err)
	}
	return key, nil
}

// loadCAFile reads a PEM file of CA certificates.
func loadCAFile(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("want a readable PEM file of certificates (%v)", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, errors.New("want a PEM file of certificates; it has none")
	}
	return pool, nil
}

// readFCMCredentials reads and checks a service-account key file; project
// is its project_id, possibly empty.
func readFCMCredentials(path string) (data []byte, project string, err error) {
	data, err = os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("want a readable service-account JSON file (%v)", err)
	}
	var sa struct {
		Type        string `json:"type"`
		ProjectID   string `json:"project_id"`
		PrivateKey  string `json:"private_key"`
		ClientEmail string `json:"client_email"`
		TokenURI    string `json:"token_uri"`
	}
	if err := json.Unmarshal(data, &sa); err != nil {
		return nil, "", fmt.Errorf("want a service-account JSON file (%v)", err)
	}
	if sa.Type != "service_account" || sa.ClientEmail == "" || sa.PrivateKey == "" {
		return nil, "", errors.New(`want a service-account key: "type":"service_account" with client_email and private_key`)
	}
	block, _ := pem.Decode([]byte(sa.PrivateKey))
	if block == nil {
		return nil, "", errors.New("want a PEM private_key in the service-account key")
	}
	if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
		if _, err1 := x509.ParsePKCS1PrivateKey(block.Bytes); err1 != nil {
			return nil, "", fmt.Errorf("want an RSA private_key in the service-account key (%v)", err)
		}
	}
	if sa.TokenURI != "" {
		if u, err := url.Parse(sa.TokenURI); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, "", errors.New("want an http(s) token_uri in the service-account key")
		}
	}
	return data, sa.ProjectID, nil
}

// endpointURL checks a scheme://host[:port][/path] URL without query or
// credentials and returns it without a trailing slash.
func endpointURL(v string, schemes ...string) (string, error) {
	u, err := url.Parse(v)
	ok := err == nil && u.Host != "" && u.User == nil && u.RawQuery == "" && u.Fragment == ""
	if ok {
		ok = false
		for _, s := range schemes {
			ok = ok || u.Scheme == s
		}
	}
	if !ok {
		return "", fmt.Errorf("want an %s:// URL with a host and no query", strings.Join(schemes, ":// or "))
	}
	return strings.TrimSuffix(v, "/"), nil
}

func isAppleID(v string) bool {
	if len(v) != 10 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func isBundleID(v string) bool {
	if v == "" || len(v) > 255 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func isProjectID(v string) bool {
	if len(v) < 6 || len(v) > 30 || v[0] < 'a' || v[0] > 'z' || v[len(v)-1] == '-' {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
