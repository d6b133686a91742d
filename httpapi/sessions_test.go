package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chatstate/chatstate/directory"
	"github.com/chatstate/chatstate/gateway"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/chatstate/chatstate/presence"
	"github.com/chatstate/chatstate/sqlitestore"
	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/redis/rueidis"
)

var sessionSecret = []byte("httpapi-session-secret")

// gatewayNode is a gateway with the API in front, as serve mounts them.
type gatewayNode struct {
	gw  *gateway.Gateway
	url string
}

func startGatewayNode(t *testing.T, client rueidis.Client, store *sqlitestore.Store, prefix, id string) *gatewayNode {
	t.Helper()
	ctx := redistest.Ctx(t)
	state := presence.New(client, presence.Config{KeyPrefix: prefix, NodeID: id})
	if err := state.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	c, msgs := startMessages(t, client, store, prefix)
	dir := directory.New(client, store, c, directory.Config{KeyPrefix: prefix})
	v, err := gateway.NewVerifier(sessionSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	gw := gateway.New(gateway.Config{NodeID: id, KeyPrefix: prefix, EventRate: 1, EventBurst: 1},
		gateway.Deps{Redis: client, State: state, Cache: c, Messages: msgs, Directory: dir, Verifier: v})
	if err := gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	api := New(Config{APIKey: "k"}, Deps{Directory: dir, State: state, Messages: msgs,
		Ping:     func(ctx2 context.Context) error { return client.Do(ctx2, client.B().Ping().Build()).Error() },
		Sessions: c, RevokeSession: gw.RevokeSession})
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", gw.Handler())
	mux.Handle("/", api)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { gw.Close(); srv.Close() })
	return &gatewayNode{gw: gw, url: srv.URL}
}

// wsClient is a bare Socket.IO v5 client: enough to connect and watch
// what the server sends.
type wsClient struct {
	ws     *websocket.Conn
	frames chan string // every text frame after CONNECT
}

func dialSocket(t *testing.T, base, user, device, ua string, secret []byte) (*wsClient, error) {
	t.Helper()
	tok, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": user, "exp": time.Now().Add(time.Hour).Unix()}).SignedString(secret)
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/socket.io/?EIO=4&transport=websocket",
		http.Header{"User-Agent": {ua}})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { ws.Close() })
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, msg, err := ws.ReadMessage(); err != nil || msg[0] != '0' {
		return nil, fmt.Errorf("open: %q %v", msg, err)
	}
	auth, _ := json.Marshal(map[string]string{"token": tok, "deviceId": device})
	ws.WriteMessage(websocket.TextMessage, append([]byte("40"), auth...))
	_, msg, err := ws.ReadMessage()
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(msg, []byte("40")) {
		return nil, fmt.Errorf("refused: %s", msg)
	}
	ws.SetReadDeadline(time.Time{})
	c := &wsClient{ws: ws, frames: make(chan string, 100)}
	go func() {
		defer close(c.frames)
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if string(msg) == "2" {
				ws.WriteMessage(websocket.TextMessage, []byte("3"))
				continue
			}
			c.frames <- string(msg)
		}
	}()
	return c, nil
}

// next returns the next frame, or "" once the connection closed.
func (c *wsClient) next(t *testing.T) string {
	t.Helper()
	select {
	case f := <-c.frames:
		return f
	case <-time.After(10 * time.Second):
		t.Fatal("no frame within 10s")
		return ""
	}
}

func getJSON(t *testing.T, base, path string, v any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", base+path, nil)
	req.Header.Set("Authorization", "Bearer k")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	json.NewDecoder(res.Body).Decode(v)
	return res.StatusCode
}

type sessionsReply struct {
	Sessions []struct {
		DeviceID                           string
		CreatedAt, LastActivity, ExpiresAt int64
		IP                                 string `json:"ip"`
		UserAgent                          string `json:"userAgent"`
	}
}

type eventsReply struct {
	Events []struct {
		Type     string
		At       int64
		IP       string `json:"ip"`
		DeviceID string
		Details  map[string]string
	}
}

// The session API lists a user's sessions with ip and user agent; DELETE
// revokes one, disconnecting its device on the other node; the security
// log of all four kinds reads back through the API.
func TestSessionAPI(t *testing.T) {
	client, prefix := redistest.Start(t)
	store := openStore(t)
	a, b := startGatewayNode(t, client, store, prefix, "a"), startGatewayNode(t, client, store, prefix, "b")

	phone, err := dialSocket(t, b.url, "alice", "phone", "phone-app/3", sessionSecret)
	if err != nil {
		t.Fatal(err)
	}
	laptop, err := dialSocket(t, a.url, "alice", "laptop", "laptop-app/1", sessionSecret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dialSocket(t, a.url, "alice", "x", "forger", []byte("wrong")); err == nil {
		t.Fatal("forged token accepted")
	}
	// rate_limited: the event limit is 1 per second with no burst.
	for i := range 3 {
		laptop.ws.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`42%d["presence:get",{"userIds":["bob"]}]`, i)))
	}
	limited := false
	for !limited {
		limited = strings.Contains(laptop.next(t), "rate_limited")
	}

	var list sessionsReply
	if status := getJSON(t, a.url, "/v1/users/alice/sessions", &list); status != 200 || len(list.Sessions) != 2 {
		t.Fatalf("sessions: %d %+v", status, list)
	}
	for i, want := range []struct{ device, ua string }{{"laptop", "laptop-app/1"}, {"phone", "phone-app/3"}} {
		s := list.Sessions[i]
		if s.DeviceID != want.device || s.UserAgent != want.ua || s.IP != "127.0.0.1" || s.CreatedAt == 0 || s.LastActivity < s.CreatedAt || s.ExpiresAt <= s.LastActivity {
			t.Errorf("session %d: %+v", i, s)
		}
	}

	// Revoke the phone (connected to b) through a.
	if status, body := call(t, &httptest.Server{URL: a.url}, "DELETE", "/v1/users/alice/sessions/phone", "k", ""); status != 204 {
		t.Fatalf("revoke: %d %v", status, body)
	}
	if f := phone.next(t); !strings.HasPrefix(f, `42["session:revoked",`) || !strings.Contains(f, `"deviceId":"phone"`) {
		t.Fatalf("phone got %q, want session:revoked", f)
	}
	if f := phone.next(t); f != "41" {
		t.Fatalf("phone got %q, want the server's DISCONNECT", f)
	}
	for f := range phone.frames {
		t.Fatalf("frame after DISCONNECT: %q", f)
	}
	list = sessionsReply{}
	if getJSON(t, b.url, "/v1/users/alice/sessions", &list); len(list.Sessions) != 1 || list.Sessions[0].DeviceID != "laptop" {
		t.Fatalf("sessions after revoke: %+v", list)
	}

	var evs eventsReply
	if status := getJSON(t, b.url, "/v1/users/alice/security-events", &evs); status != 200 {
		t.Fatalf("security events: %d", status)
	}
	kinds := map[string]int{}
	for _, e := range evs.Events {
		kinds[e.Type]++
		if e.At == 0 {
			t.Errorf("event without time: %+v", e)
		}
		if e.Type == "session_revoked" && e.DeviceID != "phone" {
			t.Errorf("revocation %+v", e)
		}
		if e.Type == "auth_failed" && (e.IP != "127.0.0.1" || e.Details["reason"] != "bad_signature") {
			t.Errorf("auth failure %+v", e)
		}
	}
	// The rate_limited entry is written right after the refusal's ack.
	for deadline := time.Now().Add(10 * time.Second); kinds["rate_limited"] == 0 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		evs = eventsReply{}
		getJSON(t, b.url, "/v1/users/alice/security-events", &evs)
		kinds = map[string]int{}
		for _, e := range evs.Events {
			kinds[e.Type]++
		}
	}
	if kinds["new_device"] != 2 || kinds["auth_failed"] != 1 || kinds["rate_limited"] != 1 || kinds["session_revoked"] != 1 {
		t.Fatalf("security log kinds %v: %+v", kinds, evs.Events)
	}
	if evs.Events[0].At < evs.Events[len(evs.Events)-1].At {
		t.Errorf("not newest first: %+v", evs.Events)
	}
	evs = eventsReply{}
	if getJSON(t, a.url, "/v1/users/alice/security-events?limit=1", &evs); len(evs.Events) != 1 {
		t.Errorf("limit=1: %+v", evs)
	}

	srv := &httptest.Server{URL: a.url}
	for _, tc := range []struct {
		method, path, key string
		status            int
		code              string
	}{
		{"GET", "/v1/users/alice/sessions", "", 401, "unauthorized"},
		{"DELETE", "/v1/users/alice/sessions/laptop", "", 401, "unauthorized"},
		{"GET", "/v1/users/alice/security-events", "", 401, "unauthorized"},
		{"GET", "/v1/users/alice/security-events?limit=0", "k", 400, "invalid"},
		{"GET", "/v1/users/alice/security-events?limit=101", "k", 400, "invalid"},
		{"GET", "/v1/users/a%7Bb%7D/sessions", "k", 400, "invalid"},
		{"DELETE", "/v1/users/alice/sessions/phone", "k", 404, "not_found"},
		{"DELETE", "/v1/users/alice/sessions/bad%20id", "k", 400, "invalid"},
		{"GET", "/v1/users/nobody/sessions", "k", 200, ""},
	} {
		if status, body := call(t, srv, tc.method, tc.path, tc.key, ""); status != tc.status || code(body) != tc.code {
			t.Errorf("%s %s: %d %v, want %d %q", tc.method, tc.path, status, body, tc.status, tc.code)
		}
	}
	// The laptop was not disconnected.
	laptop.ws.WriteMessage(websocket.TextMessage, []byte(`4299["presence:get",{"userIds":["bob"]}]`))
	for f := laptop.next(t); !strings.HasPrefix(f, "4399"); f = laptop.next(t) {
		if f == "" || f == "41" {
			t.Fatalf("laptop disconnected: %q", f)
		}
	}
}
