package pushtest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
)

// WebhookRequest is one POST the webhook fake received.
type WebhookRequest struct {
	At     time.Time
	Method string
	Path   string
	Header http.Header
	Body   []byte // raw, as signed
	// Push is Body decoded; CollapseKey is never in the body.
	Push chatstate.Push
	// SignatureOK says X-Chatstate-Signature was sha256=<hex HMAC-SHA256
	// of Body with the fake's secret>. A request without a valid signature
	// is answered 401 whatever the script says.
	SignatureOK bool
	// DecodeErr is why Body is not a valid push, if it is not.
	DecodeErr error
}

// Webhook is an app backend's push webhook: it verifies the signature,
// records every request and answers from its script (default 200).
type Webhook struct {
	URL    string
	Secret string
	srv    *httptest.Server
	script script
	log    journal[WebhookRequest]
}

// NewWebhook starts a webhook fake checking signatures with secret,
// stopped when t ends.
func NewWebhook(t testing.TB, secret string) *Webhook {
	t.Helper()
	w := &Webhook{Secret: secret}
	w.srv = httptest.NewServer(http.HandlerFunc(w.serve))
	w.URL = w.srv.URL + "/push"
	t.Cleanup(w.srv.Close)
	return w
}

// Reply queues answers for the next requests, in order; once they are
// used up the fake answers 200 again.
func (w *Webhook) Reply(r ...Reply) { w.script.push(r...) }

// Requests returns what arrived so far.
func (w *Webhook) Requests() []WebhookRequest { return w.log.all() }

// Wait returns the first n requests once they have arrived; t fails if
// they do not within timeout.
func (w *Webhook) Wait(t testing.TB, n int, timeout time.Duration) []WebhookRequest {
	t.Helper()
	return w.log.wait(t, n, timeout)
}

// Sign is the X-Chatstate-Signature value of body under secret. It is
// written here again, not taken from package push, so the fake checks the
// provider against the contract rather than against itself.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func (w *Webhook) serve(rw http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/push" {
		// Not the webhook: a stray client of a port this fake took over
		// from an earlier test's server. Not recorded.
		http.NotFound(rw, r)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, 1<<20))
	if err != nil {
		http.Error(rw, "body too large", http.StatusRequestEntityTooLarge)
		return
	}
	req := WebhookRequest{At: time.Now(), Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body}
	req.SignatureOK = hmac.Equal([]byte(r.Header.Get("X-Chatstate-Signature")), []byte(Sign(w.Secret, body)))
	req.DecodeErr = json.Unmarshal(body, &req.Push)
	w.log.add(req)
	reply := w.script.next()
	if !req.SignatureOK {
		reply = Reply{Status: http.StatusUnauthorized, Body: `{"error":"bad signature"}`}
	}
	reply.write(rw, r, "application/json", `{"ok":true}`)
}
