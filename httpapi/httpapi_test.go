package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chatstate/chatstate/cache"
	"github.com/chatstate/chatstate/directory"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/chatstate/chatstate/messaging"
	"github.com/chatstate/chatstate/presence"
	"github.com/chatstate/chatstate/sqlitestore"
)

func TestMain(m *testing.M) { os.Exit(redistest.Run(m)) }

func newServer(t *testing.T, ping func(context.Context) error) *httptest.Server {
	t.Helper()
	client, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	store, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "db.sqlite"), sqlitestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close(context.Background()) })
	c := cache.New(client, cache.Config{KeyPrefix: prefix})
	msgs := messaging.New(c, store, messaging.Config{})
	go msgs.Run(ctx)
	if ping == nil {
		ping = func(ctx context.Context) error { return client.Do(ctx, client.B().Ping().Build()).Error() }
	}
	api := New(Config{APIKey: "k", MaxBodyBytes: 1024}, Deps{
		Directory: directory.New(client, store, c, directory.Config{KeyPrefix: prefix}),
		State:     presence.New(client, presence.Config{KeyPrefix: prefix}),
		Messages:  msgs,
		Ping:      ping,
	})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return srv
}

func call(t *testing.T, srv *httptest.Server, method, path, key, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var out map[string]any
	json.Unmarshal(b, &out)
	return res.StatusCode, out
}

func code(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func TestAPI(t *testing.T) {
	srv := newServer(t, nil)
	for _, tc := range []struct {
		method, path, key, body string
		status                  int
		code                    string
	}{
		{"POST", "/v1/conversations", "", `{"members":["a"]}`, 401, "unauthorized"},
		{"POST", "/v1/conversations", "wrong", `{"members":["a"]}`, 401, "unauthorized"},
		{"POST", "/v1/conversations", "k", `{"id":"c1","members":["a","b"]}`, 201, ""},
		{"POST", "/v1/conversations", "k", `{"id":"c1","members":["a"]}`, 409, "conflict"},
		{"POST", "/v1/conversations", "k", `{"members":`, 400, "invalid"},
		{"POST", "/v1/conversations", "k", `{"members":["a"]} {}`, 400, "invalid"},
		{"POST", "/v1/conversations", "k", `{"members":["` + strings.Repeat("a", 2000) + `"]}`, 413, "too_large"},
		{"POST", "/v1/conversations", "k", `{"members":["bad id"]}`, 400, "invalid"},
		{"PUT", "/v1/users/a/friends", "k", `{"friends":["b"]}`, 200, ""},
		{"PUT", "/v1/users/a/friends", "k", `{}`, 400, "invalid"},
		{"PUT", "/v1/users/a%7Bb%7D/friends", "k", `{"friends":[]}`, 400, "invalid"},
		{"GET", "/v1/conversations/c1/messages?afterSeq=0", "k", "", 200, ""},
		{"GET", "/v1/conversations/c1/messages?afterSeq=1&beforeSeq=5", "k", "", 400, "invalid"},
		{"GET", "/v1/conversations/c1/messages?limit=-1", "k", "", 400, "invalid"},
		{"GET", "/v1/conversations/nope/messages", "k", "", 404, "not_found"},
		{"GET", "/redis/online-users?limit=5", "k", "", 200, ""},
		{"GET", "/redis/online-users?limit=5000", "k", "", 400, "invalid"},
		{"GET", "/redis/online-users?cursor=-1", "k", "", 400, "invalid"},
		{"GET", "/redis/stats", "k", "", 501, "unavailable"},
		{"POST", "/redis/cleanup", "k", "", 501, "unavailable"},
		{"GET", "/redis/health", "", "", 200, ""},
		{"GET", "/healthz", "", "", 200, ""},
	} {
		status, body := call(t, srv, tc.method, tc.path, tc.key, tc.body)
		if status != tc.status || code(body) != tc.code {
			t.Errorf("%s %s %s: %d %v, want %d %q", tc.method, tc.path, tc.body, status, body, tc.status, tc.code)
		}
	}
}

func TestHealthWhenRedisIsDown(t *testing.T) {
	srv := newServer(t, func(context.Context) error { return errors.New("dial tcp 10.1.2.3:6379: refused") })
	for _, path := range []string{"/redis/health", "/readyz"} {
		status, body := call(t, srv, "GET", path, "", "")
		if status != 503 || body["status"] != "error" {
			t.Errorf("%s: %d %v", path, status, body)
		}
		if strings.Contains(body["error"].(string), "10.1.2.3") {
			t.Errorf("%s leaks the address: %v", path, body)
		}
	}
}
