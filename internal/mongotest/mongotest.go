// Package mongotest gives tests a real MongoDB wire-protocol server.
//
// When MONGODB_URI is set, tests use that server; otherwise one FerretDB
// v1.24.2 (SQLite handler, data in a temp dir) runs in-process per test
// binary on a free 127.0.0.1 port. Either way each test gets a database of
// its own, dropped when the test ends, so tests never see each other's data.
//
// Import this package only from _test.go files: it links FerretDB, which must
// never end up in the chatstate binary.
package mongotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// EnvURI names the variable that points tests at an external server.
const EnvURI = "MONGODB_URI"

// startTimeout bounds FerretDB's start and the first ping.
const startTimeout = 60 * time.Second

var (
	sharedOnce sync.Once
	shared     *server
	sharedErr  error
)

type server struct {
	uri    string
	dir    string
	cancel context.CancelFunc
	done   chan struct{} // closed when FerretDB's Run has returned
}

// Run wraps testing.M so the in-process FerretDB (if one was started) is
// stopped and its files removed when the package's tests end. Use it from
// TestMain: os.Exit(mongotest.Run(m)).
func Run(m interface{ Run() int }) int {
	code := m.Run()
	if shared != nil {
		shared.stop()
	}
	return code
}

// BaseURI returns the URI of the package-wide server (MONGODB_URI or the
// in-process FerretDB, started on first use), without a database.
func BaseURI(t testing.TB) string {
	t.Helper()
	if u := os.Getenv(EnvURI); u != "" {
		return u
	}
	sharedOnce.Do(func() { shared, sharedErr = startFerret() })
	if sharedErr != nil {
		t.Fatalf("mongotest: %v", sharedErr)
	}
	return shared.uri
}

// Start returns a URI whose path names a database unique to t (so
// mongostore.Open(ctx, uri, "", cfg) uses it). The database is dropped when
// t ends.
func Start(t testing.TB) string {
	t.Helper()
	base := BaseURI(t)
	db := DatabaseName(t)
	uri, err := WithDatabase(base, db)
	if err != nil {
		t.Fatalf("mongotest: %v", err)
	}
	t.Cleanup(func() { dropDatabase(t, base, db) })
	return uri
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_]+`)

// DatabaseName returns "t_<test name>_<random>", valid for MongoDB and for
// FerretDB (^[a-zA-Z0-9_-]{1,63}$).
func DatabaseName(t testing.TB) string {
	var b [4]byte
	rand.Read(b[:])
	name := unsafeChars.ReplaceAllString(t.Name(), "_")
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	return "t_" + name + "_" + hex.EncodeToString(b[:])
}

// WithDatabase puts db into the path of a mongodb:// or mongodb+srv:// URI,
// keeping hosts, credentials and options. It works on the raw string because
// net/url rejects multi-host URIs.
func WithDatabase(uri, db string) (string, error) {
	i := strings.Index(uri, "://")
	if i < 0 {
		return "", fmt.Errorf("URI %q has no scheme", redact(uri))
	}
	rest := uri[i+3:]
	hostEnd := strings.IndexAny(rest, "/?")
	if hostEnd < 0 {
		return uri + "/" + db, nil
	}
	hosts, tail := rest[:hostEnd], rest[hostEnd:]
	query := ""
	if q := strings.IndexByte(tail, '?'); q >= 0 {
		query = tail[q:]
	}
	return uri[:i+3] + hosts + "/" + db + query, nil
}

func redact(uri string) string {
	if at := strings.LastIndexByte(uri, '@'); at >= 0 {
		if i := strings.Index(uri, "://"); i >= 0 && i < at {
			return uri[:i+3] + "***" + uri[at:]
		}
	}
	return uri
}

func dropDatabase(t testing.TB, base, db string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := mongo.Connect(options.Client().ApplyURI(base))
	if err != nil {
		t.Logf("mongotest: drop %s: %v", db, err)
		return
	}
	defer c.Disconnect(ctx)
	if err := c.Database(db).Drop(ctx); err != nil {
		t.Logf("mongotest: drop %s: %v", db, err)
	}
}

func startFerret() (*server, error) {
	dir, err := os.MkdirTemp("", "mongotest-")
	if err != nil {
		return nil, err
	}
	// FerretDB logs every connection at info level and some client
	// disconnects as warnings; tests only want to hear about failures, and
	// MONGOTEST_VERBOSE=1 brings the full log back when debugging.
	var logger *slog.Logger
	if os.Getenv("MONGOTEST_VERBOSE") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	} else {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	f, err := ferretdb.New(&ferretdb.Config{
		// Port 0: the kernel picks a free port, so parallel test binaries
		// never race for one.
		Listener:  ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/",
		Logger:    logger,
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start FerretDB: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{dir: dir, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		f.Run(ctx)
	}()
	// MongoDBURI blocks until the listener is bound.
	s.uri = f.MongoDBURI()
	if err := waitPing(s.uri); err != nil {
		s.stop()
		return nil, fmt.Errorf("FerretDB at %s: %w", s.uri, err)
	}
	return s, nil
}

func waitPing(uri string) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		return err
	}
	defer c.Disconnect(context.Background())
	for {
		err = c.Ping(ctx, nil)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no answer to ping within %v: %w", startTimeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *server) stop() {
	s.cancel()
	<-s.done
	os.RemoveAll(s.dir)
}
