package pushtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// APNsRequest is one POST /3/device/{token} the APNs fake received.
type APNsRequest struct {
	At         time.Time
	Proto      string // HTTP/2.0 from a real APNs client
	Token      string // the device token of the path
	Priority   string // apns-priority
	CollapseID string // apns-collapse-id
	Topic      string // apns-topic
	PushType   string // apns-push-type
	Header     http.Header
	Payload    []byte // raw JSON
	// Aps is the payload's "aps" dictionary; Custom holds its other
	// top-level keys.
	Aps    map[string]any
	Custom map[string]any
}

// APNs replies, in Apple's wire format (a JSON body with "reason").
var (
	APNsUnregistered   = Reply{Status: http.StatusGone, Body: fmt.Sprintf(`{"reason":"Unregistered","timestamp":%d}`, time.Now().UnixMilli())}
	APNsBadDeviceToken = APNsReason(http.StatusBadRequest, "BadDeviceToken")
	APNsBadTopic       = APNsReason(http.StatusBadRequest, "BadTopic")
	APNsTooMany        = APNsReason(http.StatusTooManyRequests, "TooManyRequests")
	APNsInternal       = APNsReason(http.StatusInternalServerError, "InternalServerError")
	APNsUnavailable    = APNsReason(http.StatusServiceUnavailable, "ServiceUnavailable")
)

// APNsReason is an error reply with the given status and reason.
func APNsReason(status int, reason string) Reply {
	return Reply{Status: status, Body: fmt.Sprintf(`{"reason":%q}`, reason)}
}

// APNs is Apple's HTTP/2 provider API over TLS with token authentication:
// it checks the bearer JWT (ES256, kid KeyID, iss TeamID, signed with the
// key in KeyFile) and the topic, records each notification and answers
// from its script (default 200 with an apns-id).
type APNs struct {
	URL     string // https://127.0.0.1:port, for apns2's Client.Host
	KeyFile string // the .p8 auth key
	KeyID   string
	TeamID  string
	Topic   string // the bundle id a request must name
	key     *ecdsa.PrivateKey
	srv     *httptest.Server
	script  script
	log     journal[APNsRequest]
	seq     atomic.Int64
}

// NewAPNs starts an APNs fake with a fresh auth key, stopped when t ends.
func NewAPNs(t testing.TB) *APNs {
	t.Helper()
	path, key := WriteP8Key(t)
	a := &APNs{KeyFile: path, KeyID: "ABC123DEFG", TeamID: "TEAM123456", Topic: "com.example.chat", key: key}
	a.srv = httptest.NewUnstartedServer(http.HandlerFunc(a.serve))
	a.srv.EnableHTTP2 = true
	a.srv.StartTLS()
	a.URL = a.srv.URL
	t.Cleanup(a.srv.Close)
	return a
}

// TLSConfig trusts the fake's certificate, and nothing else.
func (a *APNs) TLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(a.srv.Certificate())
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// CAFile writes the fake's certificate as PEM into a temporary directory
// of t, for CHATSTATE_APNS_CA_FILE of a server under test.
func (a *APNs) CAFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "apns-fake-ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Reply queues answers for the next notifications, in order; then the
// fake answers 200 again.
func (a *APNs) Reply(r ...Reply) { a.script.push(r...) }

// Requests returns the notifications that arrived so far (with a valid
// provider token).
func (a *APNs) Requests() []APNsRequest { return a.log.all() }

// Wait returns the first n notifications once they have arrived; t fails
// if they do not within timeout.
func (a *APNs) Wait(t testing.TB, n int, timeout time.Duration) []APNsRequest {
	t.Helper()
	return a.log.wait(t, n, timeout)
}

// WriteP8Key writes a new APNs-style auth key (ECDSA P-256, PKCS#8 PEM)
// into a temporary directory of t.
func WriteP8Key(t testing.TB) (path string, key *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "AuthKey_test.p8")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, key
}

func (a *APNs) serve(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.URL.Path, "/3/device/")
	if r.Method != http.MethodPost {
		APNsReason(http.StatusMethodNotAllowed, "MethodNotAllowed").write(w, r, "application/json", "")
		return
	}
	if !ok || token == "" || strings.Contains(token, "/") {
		APNsReason(http.StatusNotFound, "BadPath").write(w, r, "application/json", "")
		return
	}
	if reason := a.checkAuth(r.Header.Get("Authorization")); reason != "" {
		APNsReason(http.StatusForbidden, reason).write(w, r, "application/json", "")
		return
	}
	switch topic := r.Header.Get("apns-topic"); {
	case topic == "":
		APNsReason(http.StatusBadRequest, "MissingTopic").write(w, r, "application/json", "")
		return
	case topic != a.Topic:
		APNsReason(http.StatusBadRequest, "DeviceTokenNotForTopic").write(w, r, "application/json", "")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4096))
	if err != nil {
		APNsReason(http.StatusRequestEntityTooLarge, "PayloadTooLarge").write(w, r, "application/json", "")
		return
	}
	var payload map[string]any
	if json.Unmarshal(body, &payload) != nil || payload == nil {
		APNsReason(http.StatusBadRequest, "PayloadEmpty").write(w, r, "application/json", "")
		return
	}
	rec := APNsRequest{
		At: time.Now(), Proto: r.Proto, Token: token, Header: r.Header.Clone(), Payload: body,
		Priority: r.Header.Get("apns-priority"), CollapseID: r.Header.Get("apns-collapse-id"),
		Topic: r.Header.Get("apns-topic"), PushType: r.Header.Get("apns-push-type"),
		Custom: map[string]any{},
	}
	for k, v := range payload {
		if k == "aps" {
			rec.Aps, _ = v.(map[string]any)
		} else {
			rec.Custom[k] = v
		}
	}
	a.log.add(rec)
	reply := a.script.next()
	if reply.Status == 0 || reply.Status == http.StatusOK {
		w.Header().Set("apns-id", fmt.Sprintf("00000000-0000-4000-8000-%012d", a.seq.Add(1)))
	}
	reply.write(w, r, "application/json", "")
}

// checkAuth verifies the provider token; it returns APNs' reason for a
// bad one, "" for a good one.
func (a *APNs) checkAuth(h string) string {
	scheme, bearer, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "bearer") || bearer == "" {
		return "MissingProviderToken"
	}
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(bearer, claims, func(*jwt.Token) (any, error) { return &a.key.PublicKey, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithIssuer(a.TeamID), jwt.WithIssuedAt())
	if err != nil || tok.Header["kid"] != a.KeyID {
		return "InvalidProviderToken"
	}
	iat, err := claims.GetIssuedAt()
	if err != nil || iat == nil || time.Since(iat.Time) > time.Hour {
		return "ExpiredProviderToken"
	}
	return ""
}
