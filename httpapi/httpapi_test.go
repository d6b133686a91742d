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
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatstate/chatstate/cache"
	"github.com/chatstate/chatstate/directory"
	"github.com/chatstate/chatstate/internal/redisconn"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/chatstate/chatstate/messaging"
	"github.com/chatstate/chatstate/presence"
	"github.com/chatstate/chatstate/sqlitestore"
	"github.com/redis/rueidis"
)

func TestMain(m *testing.M) { os.Exit(redistest.Run(m)) }

func newServer(t *testing.T, ping func(context.Context) error) *httptest.Server {
	t.Helper()
	client, prefix := redistest.Start(t)
	return newServerOn(t, client, prefix, ping)
}

// openStore opens a SQLite store in t's temporary directory until t ends.
func openStore(t *testing.T) *sqlitestore.Store {
	t.Helper()
	store, err := sqlitestore.Open(redistest.Ctx(t), filepath.Join(t.TempDir(), "db.sqlite"), sqlitestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close(context.Background()) })
	return store
}

// startMessages is the cache and a running message flow on store, until t
// ends.
func startMessages(t *testing.T, client rueidis.Client, store *sqlitestore.Store, prefix string) (*cache.Cache, *messaging.Service) {
	t.Helper()
	c := cache.New(client, cache.Config{KeyPrefix: prefix})
	msgs := messaging.New(c, store, messaging.Config{})
	go msgs.Run(redistest.Ctx(t))
	return c, msgs
}

func newServerOn(t *testing.T, client rueidis.Client, prefix string, ping func(context.Context) error) *httptest.Server {
	t.Helper()
	store := openStore(t)
	c, msgs := startMessages(t, client, store, prefix)
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
		{"GET", "/v1/users/a/conversations", "k", "", 501, "unavailable"},
		{"GET", "/v1/users/a/conversations", "", "", 401, "unauthorized"},
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

// With Redis down every API route that needs it answers 503 unavailable
// with Retry-After and retryAfterMs, never 500, and within the request
// timeout; the same routes work again once Redis is back, with no restart.
func TestAPIWhenRedisStops(t *testing.T) {
	redis := redistest.StartServer(t)
	// The server's own client options (bounded retries), as serve uses them.
	client, err := redisconn.Open(redistest.Ctx(t), redisconn.Config{Host: "127.0.0.1", Port: strconv.Itoa(redis.Port)}, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	srv := newServerOn(t, client, redistest.Prefix(t), nil)
	if status, body := call(t, srv, "POST", "/v1/conversations", "k", `{"id":"c1","members":["a","b"]}`); status != 201 {
		t.Fatalf("create: %d %v", status, body)
	}
	redis.Stop()
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/v1/conversations/c1/messages?afterSeq=0", ""},
		{"GET", "/redis/online-users", ""},
		{"PUT", "/v1/users/a/friends", `{"friends":["b"]}`},
		{"POST", "/v1/conversations", `{"id":"c2","members":["a"]}`},
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
		req.Header.Set("Authorization", "Bearer k")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ Error chatstateErr }
		json.NewDecoder(res.Body).Decode(&body)
		res.Body.Close()
		if res.StatusCode != 503 || body.Error.Code != "unavailable" || body.Error.RetryAfterMs <= 0 || res.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s with Redis down: %d %+v Retry-After %q", tc.method, tc.path, res.StatusCode, body, res.Header.Get("Retry-After"))
		}
	}
	if status, _ := call(t, srv, "GET", "/redis/health", "", ""); status != 503 {
		t.Errorf("/redis/health with Redis down: %d", status)
	}
	redis.Restart(t)
	if status, body := call(t, srv, "GET", "/v1/conversations/c1/messages?afterSeq=0", "k", ""); status != 200 {
		t.Errorf("after Redis returned: %d %v", status, body)
	}
}

type chatstateErr struct {
	Code         string `json:"code"`
	RetryAfterMs int64  `json:"retryAfterMs"`
}
