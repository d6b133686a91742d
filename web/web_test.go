package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
)

// fakeDirectory is an in-memory chatstate.Directory.
type fakeDirectory struct {
	mu      sync.Mutex
	convs   map[string][]string
	friends map[string][]string
}

func newFakeDirectory() *fakeDirectory {
	return &fakeDirectory{convs: map[string][]string{}, friends: map[string][]string{}}
}

func (d *fakeDirectory) CreateConversation(_ context.Context, c chatstate.Conversation) (chatstate.Conversation, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.convs[c.ID]; ok {
		return c, chatstate.Errorf(chatstate.ECONFLICT, "conversation %s exists", c.ID)
	}
	d.convs[c.ID] = slices.Clone(c.Members)
	return c, nil
}

func (d *fakeDirectory) IsMember(_ context.Context, conv, user string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Contains(d.convs[conv], user), nil
}

func (d *fakeDirectory) Members(_ context.Context, conv string) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	m, ok := d.convs[conv]
	if !ok {
		return nil, chatstate.Errorf(chatstate.ENOTFOUND, "no conversation %s", conv)
	}
	return slices.Clone(m), nil
}

func (d *fakeDirectory) ConversationsOf(_ context.Context, user string) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for id, m := range d.convs {
		if slices.Contains(m, user) {
			out = append(out, id)
		}
	}
	return out, nil
}

func (d *fakeDirectory) UpdateMembers(context.Context, string, chatstate.MembersChange) (chatstate.Conversation, chatstate.MembersChange, error) {
	return chatstate.Conversation{}, chatstate.MembersChange{}, errors.New("not used")
}

func (d *fakeDirectory) SetFriends(_ context.Context, user string, friends []string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.friends[user] = slices.Clone(friends)
	return nil
}

func (d *fakeDirectory) Friends(_ context.Context, user string) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.friends[user]), nil
}

// verify accepts "token-<user>".
func verify(token string) (string, error) {
	if u, ok := strings.CutPrefix(token, "token-"); ok {
		return u, nil
	}
	return "", errors.New("bad signature")
}

func mint(user string) (string, time.Time, error) {
	return "token-" + user, time.Now().Add(time.Hour), nil
}

type emitted struct{ user, event, data string }

type fixture struct {
	h    *Handler
	dir  *fakeDirectory
	mu   sync.Mutex
	sent []emitted
}

func newFixture(cfg Config, withMint bool) *fixture {
	f := &fixture{dir: newFakeDirectory()}
	deps := Deps{Verify: verify, Directory: f.dir,
		EmitToUser: func(_ context.Context, user, event string, data json.RawMessage) error {
			f.mu.Lock()
			f.sent = append(f.sent, emitted{user, event, string(data)})
			f.mu.Unlock()
			return nil
		}}
	if withMint {
		deps.Mint = mint
	}
	f.h = New(cfg, deps)
	return f
}

// do serves one request and decodes a JSON reply into out (when set).
func (f *fixture) do(t *testing.T, method, path, token, body string, out any) *http.Response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, r)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req)
	res := w.Result()
	if out != nil {
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: %d, body not JSON: %v", method, path, res.StatusCode, err)
		}
	}
	return res
}

type errBody struct {
	Error struct{ Code, Message string } `json:"error"`
}

func TestPagesAndAssets(t *testing.T) {
	f := newFixture(Config{Demo: true, Development: true}, true)
	for _, tc := range []struct{ path, ctype, contains string }{
		{"/", "text/html", "/static/app.js"},
		{"/admin", "text/html", "/static/admin.js"},
		{"/static/app.js", "text/javascript", "socket.io.esm.min.js"},
		{"/static/style.css", "text/css", ".bubble"},
		{"/static/socket.io.esm.min.js", "text/javascript", "Socket.IO v"},
	} {
		res := f.do(t, "GET", tc.path, "", "", nil)
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), tc.ctype) || !strings.Contains(string(b), tc.contains) {
			t.Errorf("GET %s: %d %s, want 200 %s containing %q", tc.path, res.StatusCode, res.Header.Get("Content-Type"), tc.ctype, tc.contains)
		}
	}
	res := f.do(t, "GET", "/", "", "", nil)
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
		t.Errorf("the page's policy %q must allow this origin only", csp)
	}
	res = f.do(t, "GET", "/static/app.js", "", "", nil)
	tag := res.Header.Get("ETag")
	req := httptest.NewRequest("GET", "/static/app.js", nil)
	req.Header.Set("If-None-Match", tag)
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req)
	if tag == "" || w.Code != http.StatusNotModified {
		t.Errorf("revalidating app.js (ETag %q): %d, want 304", tag, w.Code)
	}
	if res := f.do(t, "GET", "/static/nope.js", "", "", nil); res.StatusCode != 404 {
		t.Errorf("missing asset: %d, want 404", res.StatusCode)
	}
}

// TestDemoOff: a production server without CHATSTATE_DEMO serves no demo,
// says how to turn it on, and keeps the dashboard.
func TestDemoOff(t *testing.T) {
	f := newFixture(Config{}, true)
	res := f.do(t, "GET", "/", "", "", nil)
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 404 || !strings.Contains(string(b), "CHATSTATE_DEMO=1") {
		t.Errorf("GET /: %d %q, want 404 naming CHATSTATE_DEMO=1", res.StatusCode, b)
	}
	var e errBody
	for _, path := range []string{"/demo/config", "/demo/token"} {
		if res := f.do(t, "POST", path, "", `{"userId":"alice"}`, &e); res.StatusCode != 404 || e.Error.Code != chatstate.ENOTFOUND {
			t.Errorf("%s: %d %+v, want 404 not_found", path, res.StatusCode, e)
		}
	}
	if res := f.do(t, "GET", "/admin", "", "", nil); res.StatusCode != 200 {
		t.Errorf("GET /admin: %d, want 200 (behind the API key, not the demo setting)", res.StatusCode)
	}
}

// TestTokenOnlyInDevelopment: the server mints tokens in development mode
// only, whatever it was given to sign with.
func TestTokenOnlyInDevelopment(t *testing.T) {
	var e errBody
	prod := newFixture(Config{Demo: true}, true)
	res := prod.do(t, "POST", "/demo/token", "", `{"userId":"alice"}`, &e)
	if res.StatusCode != 403 || e.Error.Code != chatstate.EFORBIDDEN || !strings.Contains(e.Error.Message, "development mode") {
		t.Errorf("production: %d %+v, want 403 forbidden saying development mode", res.StatusCode, e)
	}
	var cfg map[string]bool
	prod.do(t, "GET", "/demo/config", "", "", &cfg)
	if cfg["development"] || cfg["mintsTokens"] || cfg["startsConversations"] {
		t.Errorf("production config %v", cfg)
	}

	noSecret := newFixture(Config{Demo: true, Development: true}, false)
	if res := noSecret.do(t, "POST", "/demo/token", "", `{"userId":"alice"}`, &e); res.StatusCode != 403 || !strings.Contains(e.Error.Message, "CHATSTATE_JWT_SECRET") {
		t.Errorf("no secret: %d %+v", res.StatusCode, e)
	}

	dev := newFixture(Config{Demo: true, Development: true}, true)
	var tok struct {
		UserID, Token string
		ExpiresAt     int64
	}
	if res := dev.do(t, "POST", "/demo/token", "", `{"userId":"alice"}`, &tok); res.StatusCode != 200 || tok.Token != "token-alice" || tok.ExpiresAt <= time.Now().UnixMilli() {
		t.Errorf("development: %d %+v", res.StatusCode, tok)
	}
	for body, code := range map[string]string{
		`{"userId":"bad id"}`: chatstate.EINVALID,
		`{"userId":"a"} {}`:   chatstate.EINVALID,
		`not json`:            chatstate.EINVALID,
		`{"userId":"` + strings.Repeat("a", 5000) + `"}`: chatstate.ETOOLARGE,
		`{"userId":"` + strings.Repeat("a", 129) + `"}`:  chatstate.EINVALID,
		`{"userId":""}`: chatstate.EINVALID,
	} {
		e = errBody{}
		dev.do(t, "POST", "/demo/token", "", body, &e)
		if e.Error.Code != code {
			t.Errorf("body %.40s: %+v, want %s", body, e, code)
		}
	}
}

func TestStartConversation(t *testing.T) {
	f := newFixture(Config{Demo: true, Development: true}, true)
	var out struct {
		Conversation chatstate.Conversation
		Created      bool
	}
	res := f.do(t, "POST", "/demo/conversations", "token-alice", `{"with":"bob"}`, &out)
	if res.StatusCode != 201 || !out.Created || out.Conversation.ID != PairID("alice", "bob") || !slices.Equal(out.Conversation.Members, []string{"alice", "bob"}) {
		t.Fatalf("start: %d %+v", res.StatusCode, out)
	}
	ctx := context.Background()
	for u, want := range map[string]string{"alice": "bob", "bob": "alice"} {
		if fr, _ := f.dir.Friends(ctx, u); !slices.Equal(fr, []string{want}) {
			t.Errorf("%s's friends %v, want [%s]", u, fr, want)
		}
	}
	if len(f.sent) != 2 || f.sent[0].user != "bob" || f.sent[1].user != "alice" || f.sent[0].event != EventConversation {
		t.Errorf("events %+v, want %s to bob and alice", f.sent, EventConversation)
	}
	// bob starting it again finds the same one; nobody's list grows.
	res = f.do(t, "POST", "/demo/conversations", "token-bob", `{"with":"alice"}`, &out)
	if res.StatusCode != 200 || out.Created || out.Conversation.ID != PairID("alice", "bob") {
		t.Errorf("again: %d %+v", res.StatusCode, out)
	}
	if fr, _ := f.dir.Friends(ctx, "bob"); len(fr) != 1 {
		t.Errorf("bob's friends %v after starting twice", fr)
	}
	var friends struct {
		UserID  string
		Friends []string
	}
	if res := f.do(t, "GET", "/demo/friends", "token-bob", "", &friends); res.StatusCode != 200 || !slices.Equal(friends.Friends, []string{"alice"}) {
		t.Errorf("friends: %d %+v", res.StatusCode, friends)
	}

	// An id taken by a conversation without both users is not theirs.
	f.dir.CreateConversation(ctx, chatstate.Conversation{ID: PairID("carol", "dave"), Members: []string{"carol", "eve"}})
	var e errBody
	if res := f.do(t, "POST", "/demo/conversations", "token-carol", `{"with":"dave"}`, &e); res.StatusCode != 409 || e.Error.Code != chatstate.ECONFLICT {
		t.Errorf("taken id: %d %+v", res.StatusCode, e)
	}
	for _, tc := range []struct {
		token, body string
		status      int
		code        string
	}{
		{"", `{"with":"bob"}`, 401, chatstate.EUNAUTHORIZED},
		{"forged", `{"with":"bob"}`, 401, chatstate.EUNAUTHORIZED},
		{"token-alice", `{"with":"alice"}`, 400, chatstate.EINVALID},
		{"token-alice", `{"with":"b b"}`, 400, chatstate.EINVALID},
		{"token-alice", `{}`, 400, chatstate.EINVALID},
	} {
		e = errBody{}
		if res := f.do(t, "POST", "/demo/conversations", tc.token, tc.body, &e); res.StatusCode != tc.status || e.Error.Code != tc.code {
			t.Errorf("%s %s: %d %+v, want %d %s", tc.token, tc.body, res.StatusCode, e, tc.status, tc.code)
		}
	}

	prod := newFixture(Config{Demo: true}, true)
	if res := prod.do(t, "POST", "/demo/conversations", "token-alice", `{"with":"bob"}`, &e); res.StatusCode != 403 || e.Error.Code != chatstate.EFORBIDDEN {
		t.Errorf("production: %d %+v, want 403 forbidden", res.StatusCode, e)
	}
	if len(prod.dir.convs) != 0 {
		t.Error("production created a conversation")
	}
	if res := prod.do(t, "GET", "/demo/friends", "token-alice", "", &friends); res.StatusCode != 200 {
		t.Errorf("production friends: %d (a signed-in user reads its own list)", res.StatusCode)
	}
}

func TestPairID(t *testing.T) {
	if PairID("alice", "bob") != PairID("bob", "alice") {
		t.Error("PairID depends on who starts")
	}
	// The separator a readable id would use is allowed in user ids.
	if PairID("a.b", "c") == PairID("a", "b.c") {
		t.Error("distinct pairs share an id")
	}
	if err := chatstate.ValidateID("conversationId", PairID(strings.Repeat("x", 128), "y")); err != nil {
		t.Error(err)
	}
}

// TestVendoredSocketIO: the embedded client is the official bundle of the
// version the end-to-end tests pin, byte for byte.
func TestVendoredSocketIO(t *testing.T) {
	e2e := filepath.Join("..", "cmd", "chatstate", "testdata", "e2e")
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	b, err := os.ReadFile(filepath.Join(e2e, "package.json"))
	if err == nil {
		err = json.Unmarshal(b, &pkg)
	}
	if err != nil {
		t.Fatal(err)
	}
	pinned := pkg.Dependencies["socket.io-client"]
	if !regexp.MustCompile(`^\d+\.\d+\.\d+$`).MatchString(pinned) {
		t.Fatalf("socket.io-client is pinned as %q, want an exact version", pinned)
	}
	ours, err := fs.ReadFile(static, "socket.io.esm.min.js")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ours[:200]), "Socket.IO v"+pinned+"\n") {
		t.Errorf("embedded bundle header %q, want version %s", ours[:40], pinned)
	}
	readme, _ := os.ReadFile("README.md")
	if !strings.Contains(string(readme), "socket.io-client@"+pinned) {
		t.Errorf("web/README.md does not say the bundle is socket.io-client@%s", pinned)
	}
	npm, err := os.ReadFile(filepath.Join(e2e, "node_modules", "socket.io-client", "dist", "socket.io.esm.min.js"))
	if err != nil {
		t.Fatalf("the e2e npm packages are missing (run bash scripts/setup.sh): %v", err)
	}
	if string(npm) != string(ours) {
		t.Error("static/socket.io.esm.min.js differs from the npm package's dist file: copy it again")
	}
}

// TestPagesReferenceEmbeddedFiles: every file a page or module loads is
// in the binary, and nothing is loaded from another origin.
func TestPagesReferenceEmbeddedFiles(t *testing.T) {
	ref := regexp.MustCompile(`(?:src|href)="([^"]+)"|from "([^"]+)"`)
	names, _ := fs.Glob(static, "*")
	for _, name := range names {
		if !strings.HasSuffix(name, ".html") && !strings.HasSuffix(name, ".js") || name == "socket.io.esm.min.js" {
			continue
		}
		b, _ := fs.ReadFile(static, name)
		for _, m := range ref.FindAllStringSubmatch(string(b), -1) {
			target := m[1] + m[2]
			switch {
			case strings.HasPrefix(target, "data:"), strings.HasPrefix(target, "/admin"), target == "/":
				continue
			case strings.Contains(target, "//"):
				t.Errorf("%s loads %s from another origin", name, target)
				continue
			}
			file := strings.TrimPrefix(strings.TrimPrefix(target, "/static/"), "./")
			if _, err := fs.Stat(static, file); err != nil {
				t.Errorf("%s loads %s, which is not embedded", name, target)
			}
		}
	}
}
