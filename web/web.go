// Package web serves chatstate's two pages from files embedded in the
// binary: the demo chat at / and the operator's dashboard at /admin, with
// the small /demo/ API the demo page signs in and starts conversations
// with (docs/demo.md). There is no build step: the pages are plain HTML,
// CSS and JavaScript modules, and the Socket.IO client is the official
// browser bundle, served from static/ like the rest (static/VENDOR.md).
package web

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/chatstate/chatstate"
)

//go:embed static
var files embed.FS

// static is the embedded static/ directory.
var static, _ = fs.Sub(files, "static")

// Config of the pages.
type Config struct {
	// Demo serves the demo chat at / and the /demo/ API; off, / answers
	// 404 with a line saying how to turn it on.
	Demo bool
	// Development allows what only a development server may do for the
	// demo: mint a token for any user name (POST /demo/token), and create
	// a conversation and a friendship between two users
	// (POST /demo/conversations). Off, both answer 403 forbidden.
	Development bool
	// MaxBodyBytes caps /demo/ request bodies; zero means 4 KiB.
	MaxBodyBytes int64
	// RequestTimeout bounds a /demo/ request's work; zero means 5s.
	RequestTimeout time.Duration
	Logger         *slog.Logger
}

func (c *Config) setDefaults() {
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 4 << 10
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Deps are what the demo API uses.
type Deps struct {
	// Verify returns the user id of a valid client token (the gateway's
	// Verifier.Verify): the demo API trusts a request as much as a
	// Socket.IO handshake with the same token.
	Verify func(token string) (string, error)
	// Mint signs a client token for userID. Nil: the server mints none
	// (production, or no HS256 secret to sign with).
	Mint      func(userID string) (token string, expiresAt time.Time, err error)
	Directory chatstate.Directory
	// ConversationCreated puts a new conversation in its members' lists
	// (messaging.Service); nil skips it.
	ConversationCreated func(ctx context.Context, c chatstate.Conversation) error
	// EmitToUser sends a custom event to every device of a user on any
	// node (gateway.EmitToUser); nil sends none.
	EmitToUser func(ctx context.Context, userID, event string, data json.RawMessage) error
}

// Handler serves the pages, their static files and the /demo/ API.
type Handler struct {
	cfg  Config
	deps Deps
	mux  *http.ServeMux
}

// New builds the handler. Mount it for the patterns of Routes.
func New(cfg Config, deps Deps) *Handler {
	cfg.setDefaults()
	h := &Handler{cfg: cfg, deps: deps, mux: http.NewServeMux()}
	assets := http.StripPrefix("/static/", revalidated(http.FileServerFS(static)))
	h.mux.Handle("GET /static/", assets)
	h.mux.HandleFunc("GET /admin", h.page("admin.html"))
	h.mux.HandleFunc("GET /{$}", h.home)
	h.demoRoutes()
	return h
}

// Routes are the paths the handler serves, for the server's mux; every
// other path is the API's.
var Routes = []string{"GET /{$}", "GET /admin", "GET /static/", "/demo/"}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mux.ServeHTTP(w, r)
}

// home is the demo page, or a pointer to the setting that turns it on.
func (h *Handler) home(w http.ResponseWriter, r *http.Request) {
	if !h.cfg.Demo {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte("chatstate: the demo chat is off in production; set CHATSTATE_DEMO=1 to serve it (docs/demo.md). The operator's dashboard is at /admin.\n"))
		return
	}
	h.page("index.html")(w, r)
}

// page serves one embedded HTML file with a policy that allows nothing
// but this origin: the pages load no script, style or font from anywhere
// else, so they work offline and an injected message cannot load one.
func (h *Handler) page(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, err := fs.ReadFile(static, name)
		if err != nil {
			http.Error(w, "page missing from the build", http.StatusInternalServerError)
			return
		}
		hd := w.Header()
		hd.Set("Content-Type", "text/html; charset=utf-8")
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-cache")
		w.Write(b)
	}
}

// etags are the static files' content hashes: embedded files have no
// modification time to revalidate by.
var etags = func() map[string]string {
	m := map[string]string{}
	fs.WalkDir(static, ".", func(name string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := fs.ReadFile(static, name)
			sum := sha256.Sum256(b)
			m[name] = `"` + hex.EncodeToString(sum[:8]) + `"`
		}
		return nil
	})
	return m
}()

// revalidated makes browsers check a static file on every load (304 while
// it is unchanged), so a new binary's page never runs an old script.
func revalidated(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if tag, ok := etags[r.URL.Path]; ok {
			w.Header().Set("ETag", tag)
		}
		next.ServeHTTP(w, r)
	})
}
