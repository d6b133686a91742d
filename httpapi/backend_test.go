package httpapi

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chatstate/chatstate/directory"
	"github.com/chatstate/chatstate/gateway"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/chatstate/chatstate/presence"
)

// newBackendServer is the API with the backend routes on a real gateway
// (not started: the routes publish through Redis, no socket is needed).
func newBackendServer(t *testing.T) *httptest.Server {
	t.Helper()
	client, prefix := redistest.Start(t)
	store := openStore(t)
	c, msgs := startMessages(t, client, store, prefix)
	dir := directory.New(client, store, c, directory.Config{KeyPrefix: prefix})
	state := presence.New(client, presence.Config{KeyPrefix: prefix})
	gw := gateway.New(gateway.Config{KeyPrefix: prefix}, gateway.Deps{Redis: client, State: state, Cache: c, Messages: msgs, Directory: dir})
	t.Cleanup(func() { gw.Close() })
	api := New(Config{APIKey: "k"}, Deps{Directory: dir, State: state, Messages: msgs, Backend: gw, ConversationReader: store,
		Ping: func(ctx context.Context) error { return nil }})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return srv
}

func TestBackendRoutes(t *testing.T) {
	srv := newBackendServer(t)
	if status, body := call(t, srv, "POST", "/v1/conversations", "k", `{"id":"c1","members":["a","b"]}`); status != 201 {
		t.Fatalf("create: %d %v", status, body)
	}
	status, body := call(t, srv, "GET", "/v1/conversations/c1", "k", "")
	if status != 200 || body["id"] != "c1" || body["lastSeq"] != float64(0) || body["createdAt"].(float64) <= 0 ||
		fmt.Sprint(body["members"]) != "[a b]" {
		t.Fatalf("GET conversation before any message: %d %v", status, body)
	}

	send := `{"senderId":"bot","clientMessageId":"k1","content":"hello","type":"system"}`
	status, body = call(t, srv, "POST", "/v1/conversations/c1/messages", "k", send)
	msg, _ := body["message"].(map[string]any)
	if status != 201 || msg["seq"] != float64(1) || msg["senderId"] != "bot" || msg["type"] != "system" {
		t.Fatalf("send: %d %v", status, body)
	}
	status, body = call(t, srv, "POST", "/v1/conversations/c1/messages", "k", send)
	again, _ := body["message"].(map[string]any)
	if status != 200 || again["id"] != msg["id"] || again["seq"] != float64(1) {
		t.Fatalf("resend: %d %v, want 200 with %v", status, body, msg)
	}
	if status, body = call(t, srv, "GET", "/v1/conversations/c1", "k", ""); status != 200 || body["lastSeq"] != float64(1) {
		t.Fatalf("GET conversation after a send: %d %v", status, body)
	}
	if status, body = call(t, srv, "GET", "/v1/conversations/c1/messages", "k", ""); status != 200 || len(body["messages"].([]any)) != 1 {
		t.Fatalf("history after a send and its resend: %d %v", status, body)
	}

	ids := make([]string, 501)
	for i := range ids {
		ids[i] = fmt.Sprintf("u%d", i)
	}
	bigData := `{"event":"app:big","data":"` + strings.Repeat("x", gateway.MaxEventDataBytes) + `"}`
	for _, tc := range []struct {
		method, path, key, body string
		status                  int
		code                    string
	}{
		{"POST", "/v1/conversations/c1/messages", "", send, 401, "unauthorized"},
		{"GET", "/v1/conversations/c1", "", "", 401, "unauthorized"},
		{"POST", "/v1/users/a/events", "", `{"event":"app:x"}`, 401, "unauthorized"},
		{"POST", "/v1/conversations/c1/events", "", `{"event":"app:x"}`, 401, "unauthorized"},
		{"GET", "/v1/presence?userIds=a", "", "", 401, "unauthorized"},
		{"POST", "/v1/conversations/nope/messages", "k", send, 404, "not_found"},
		{"POST", "/v1/conversations/c1/messages", "k", `{"senderId":"bot","content":"x"}`, 400, "invalid"},
		{"POST", "/v1/conversations/c1/messages", "k", `{"clientMessageId":"k2","content":"x"}`, 400, "invalid"},
		{"POST", "/v1/conversations/c1/messages", "k", `{"senderId":"bot","clientMessageId":"k3","content":"x","type":"skip"}`, 400, "invalid"},
		{"POST", "/v1/conversations/c1/messages", "k", `{"senderId":"bot","clientMessageId":"k4","content":"` + strings.Repeat("x", 17<<10) + `"}`, 413, "too_large"},
		{"POST", "/v1/conversations/c1/messages", "k", `{"senderId":`, 400, "invalid"},
		{"GET", "/v1/conversations/nope", "k", "", 404, "not_found"},
		{"GET", "/v1/conversations/bad%20id", "k", "", 400, "invalid"},
		{"POST", "/v1/users/a/events", "k", `{"event":"app:x","data":{"n":1}}`, 202, ""},
		{"POST", "/v1/users/a/events", "k", `{"event":"app:x"}`, 202, ""},
		{"POST", "/v1/users/bad%20id/events", "k", `{"event":"app:x"}`, 400, "invalid"},
		{"POST", "/v1/users/a/events", "k", `{"event":"message:new","data":{}}`, 400, "invalid"},
		{"POST", "/v1/users/a/events", "k", `{"event":"disconnect"}`, 400, "invalid"},
		{"POST", "/v1/users/a/events", "k", `{"event":"session:revoked"}`, 400, "invalid"},
		{"POST", "/v1/users/a/events", "k", `{"event":""}`, 400, "invalid"},
		{"POST", "/v1/users/a/events", "k", `{"event":"a b"}`, 400, "invalid"},
		{"POST", "/v1/users/a/events", "k", bigData, 413, "too_large"},
		{"POST", "/v1/conversations/c1/events", "k", `{"event":"app:x","data":[1,2]}`, 202, ""},
		{"POST", "/v1/conversations/nope/events", "k", `{"event":"app:x"}`, 404, "not_found"},
		{"POST", "/v1/conversations/c1/events", "k", `{"event":"typing"}`, 400, "invalid"},
		{"GET", "/v1/presence?userIds=a,b", "k", "", 200, ""},
		{"GET", "/v1/presence", "k", "", 200, ""},
		{"GET", "/v1/presence?userIds=a,bad%20id", "k", "", 400, "invalid"},
		{"GET", "/v1/presence?userIds=" + strings.Join(ids, ","), "k", "", 413, "too_large"},
	} {
		status, body := call(t, srv, tc.method, tc.path, tc.key, tc.body)
		if status != tc.status || code(body) != tc.code {
			t.Errorf("%s %s %.80s: %d %v, want %d %q", tc.method, tc.path, tc.body, status, body, tc.status, tc.code)
		}
	}
	status, body = call(t, srv, "GET", "/v1/presence?userIds=a,b,a", "k", "")
	p, _ := body["presence"].(map[string]any)
	a, _ := p["a"].(map[string]any)
	if status != 200 || len(p) != 2 || a["online"] != false || a["status"] != "offline" || a["devices"] != float64(0) {
		t.Fatalf("presence: %d %v", status, body)
	}
}
