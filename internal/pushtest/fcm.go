package pushtest

import (
	"crypto/rand"
	"crypto/rsa"
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
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"firebase.google.com/go/v4/messaging"
	"github.com/golang-jwt/jwt/v5"
)

// FCMRequest is one messages:send call the FCM fake received.
type FCMRequest struct {
	At      time.Time
	Project string // from the path /v1/projects/{project}/messages:send
	Header  http.Header
	// Raw is the request's "message" object as sent: the wire names
	// (android.priority "high"/"normal", webpush.headers ...).
	Raw json.RawMessage
	// Message is Raw decoded with the SDK's own types.
	Message messaging.Message
}

// FCM replies in the HTTP v1 wire format, so the Admin SDK's error
// classification (messaging.IsUnregistered, IsUnavailable, ...) applies.
var (
	FCMUnregistered = FCMError(http.StatusNotFound, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found.", "")
	FCMUnavailable  = FCMError(http.StatusServiceUnavailable, "UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable.", "")
	FCMInternal     = FCMError(http.StatusInternalServerError, "INTERNAL", "INTERNAL", "Internal error encountered.", "")
	FCMQuota        = FCMError(http.StatusTooManyRequests, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "Quota exceeded for quota metric 'Send requests'.", "")
	// FCMInvalidArgument is a payload FCM refuses (a bad data value).
	FCMInvalidArgument = FCMError(http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Invalid value at 'message.data[0].value' (TYPE_STRING), 7", "message.data[0].value")
	// FCMInvalidToken is FCM's answer to a malformed registration token.
	FCMInvalidToken   = FCMError(http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token", "message.token")
	FCMSenderMismatch = FCMError(http.StatusForbidden, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", "SenderId mismatch", "")
)

// FCMError is an HTTP v1 error reply: a google.rpc.Status with the
// FcmError detail carrying fcmCode and, when field is set, a BadRequest
// field violation naming it.
func FCMError(status int, rpcStatus, fcmCode, message, field string) Reply {
	details := []any{map[string]any{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcmCode}}
	if field != "" {
		details = append(details, map[string]any{
			"@type":           "type.googleapis.com/google.rpc.BadRequest",
			"fieldViolations": []any{map[string]any{"field": field, "description": message}},
		})
	}
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"code": status, "message": message, "status": rpcStatus, "details": details}})
	return Reply{Status: status, Body: string(b)}
}

// FCM is Firebase Cloud Messaging's HTTP v1 send endpoint plus the Google
// OAuth 2.0 token endpoint a service account signs in at. Point the SDK at
// it with option.WithEndpoint(f.Endpoint()) and the credentials of
// f.CredentialsFile; sends without a token the fake issued get 401.
type FCM struct {
	URL         string
	ProjectID   string
	ClientEmail string
	key         *rsa.PrivateKey
	srv         *httptest.Server
	script      script
	log         journal[FCMRequest]
	seq         atomic.Int64

	mu     sync.Mutex
	tokens map[string]bool // access tokens issued
}

// NewFCM starts an FCM fake for project "chatstate-test", stopped when t
// ends.
func NewFCM(t testing.TB) *FCM {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f := &FCM{ProjectID: "chatstate-test", ClientEmail: "push@chatstate-test.iam.gserviceaccount.com", key: key, tokens: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", f.token)
	mux.HandleFunc("POST /v1/projects/{project}/messages:send", f.send)
	f.srv = httptest.NewServer(mux)
	f.URL = f.srv.URL
	t.Cleanup(f.srv.Close)
	return f
}

// Endpoint is the value for option.WithEndpoint (and
// CHATSTATE_FCM_ENDPOINT).
func (f *FCM) Endpoint() string { return f.URL + "/v1" }

// CredentialsFile writes a service-account JSON whose token_uri is the
// fake into a temporary directory of t and returns its path. Its key is
// the one the fake checks sign-in assertions with.
func (f *FCM) CredentialsFile(t testing.TB) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(f.key)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(map[string]string{
		"type":           "service_account",
		"project_id":     f.ProjectID,
		"private_key_id": "test-key-1",
		"private_key":    string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email":   f.ClientEmail,
		"client_id":      "1",
		"token_uri":      f.URL + "/token",
	})
	path := filepath.Join(t.TempDir(), "fcm-service-account.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Reply queues answers for the next sends, in order; then the fake
// answers success again.
func (f *FCM) Reply(r ...Reply) { f.script.push(r...) }

// Requests returns the sends that arrived so far (with a valid token).
func (f *FCM) Requests() []FCMRequest { return f.log.all() }

// Wait returns the first n sends once they have arrived; t fails if they
// do not within timeout.
func (f *FCM) Wait(t testing.TB, n int, timeout time.Duration) []FCMRequest {
	t.Helper()
	return f.log.wait(t, n, timeout)
}

// TokensIssued is how many access tokens the token endpoint handed out.
func (f *FCM) TokensIssued() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.tokens)
}

// token is the OAuth 2.0 JWT-bearer grant (RFC 7523) of a service account.
func (f *FCM) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		oauthError(w, "unsupported_grant_type", "want the jwt-bearer grant")
		return
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(r.PostForm.Get("assertion"), claims, func(*jwt.Token) (any, error) { return &f.key.PublicKey, nil },
		jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer(f.ClientEmail), jwt.WithAudience(f.URL+"/token"), jwt.WithIssuedAt())
	if err != nil {
		oauthError(w, "invalid_grant", err.Error())
		return
	}
	if scope, _ := claims["scope"].(string); !strings.Contains(scope, "https://www.googleapis.com/auth/firebase.messaging") && !strings.Contains(scope, "https://www.googleapis.com/auth/cloud-platform") {
		oauthError(w, "invalid_scope", "no messaging scope in "+scope)
		return
	}
	tok := fmt.Sprintf("ya29.fake-%d", f.seq.Add(1))
	f.mu.Lock()
	f.tokens[tok] = true
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600})
}

func oauthError(w http.ResponseWriter, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func (f *FCM) send(w http.ResponseWriter, r *http.Request) {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	ok := f.tokens[tok]
	f.mu.Unlock()
	if !ok {
		FCMError(http.StatusUnauthorized, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR", "Request had invalid authentication credentials.", "").write(w, r, "application/json", "")
		return
	}
	project := r.PathValue("project")
	if project != f.ProjectID {
		FCMError(http.StatusNotFound, "NOT_FOUND", "", "Requested entity was not found.", "").write(w, r, "application/json", "")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	var req struct {
		Message json.RawMessage `json:"message"`
	}
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	rec := FCMRequest{At: time.Now(), Project: project, Header: r.Header.Clone(), Raw: req.Message}
	if err == nil {
		err = json.Unmarshal(req.Message, &rec.Message)
	}
	if err != nil {
		FCMError(http.StatusBadRequest, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "Invalid JSON payload received. "+err.Error(), "").write(w, r, "application/json", "")
		return
	}
	f.log.add(rec)
	ok200 := fmt.Sprintf(`{"name":"projects/%s/messages/0:%d"}`, project, f.seq.Add(1))
	f.script.next().write(w, r, "application/json; charset=UTF-8", ok200)
}
