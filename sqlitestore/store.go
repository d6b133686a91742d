// Package sqlitestore is the embedded chatstate.Store: one SQLite file (pure
// Go, modernc.org/sqlite) for single-node deployments and development, where
// running MongoDB is not worth it.
//
// SQLite serialises writers, so the store keeps exactly one writer connection
// (callers queue in database/sql instead of spinning on SQLITE_BUSY) and a
// pool of query-only reader connections, which WAL mode lets run beside the
// writer. InsertMessages is one transaction per batch: the send path
// group-commits concurrent sends, so the fsync cost is paid per batch.
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatstate/chatstate"
	"modernc.org/sqlite"
)

// Config tunes the store. Zero values mean the documented defaults.
type Config struct {
	// ReadConns is the size of the reader pool; zero means 4.
	ReadConns int
	// BusyTimeout is how long a connection waits for a lock held by another
	// process on the same file; zero means 5 seconds.
	BusyTimeout time.Duration
	// Synchronous is "full" or "normal"; empty means "full": a message that
	// InsertMessages reported stored survives a power loss. "normal" (WAL)
	// only survives process crashes but commits several times faster.
	Synchronous string
	// StoreLimits are the limits every store shares: names, defaults and
	// behaviour at each are documented on chatstate.StoreLimits.
	chatstate.StoreLimits
}

func (c *Config) defaults() error {
	setDefault(&c.ReadConns, 4)
	if c.BusyTimeout == 0 {
		c.BusyTimeout = 5 * time.Second
	}
	switch strings.ToLower(c.Synchronous) {
	case "", "full":
		c.Synchronous = "FULL"
	case "normal":
		c.Synchronous = "NORMAL"
	default:
		return chatstate.Errorf(chatstate.EINVALID, "synchronous must be full or normal, not %q", c.Synchronous)
	}
	if c.ReadConns < 0 || c.BusyTimeout < 0 {
		return chatstate.Errorf(chatstate.EINVALID, "negative ReadConns or BusyTimeout in sqlitestore.Config")
	}
	var err error
	c.StoreLimits, err = c.StoreLimits.WithDefaults()
	return err
}

func setDefault(v *int, def int) {
	if *v == 0 {
		*v = def
	}
}

// schemaVersion is stored in PRAGMA user_version; Open refuses a file written
// by a newer version rather than misreading it.
const schemaVersion = 3

// migrations[v] brings a version v-1 file to version v; schema is version 1
// plus the tables created IF NOT EXISTS that later versions added.
var migrations = map[int]string{
	// 2: read positions: the read_positions table of schema, created IF
	// NOT EXISTS, so nothing to alter.
	2: ``,
	// 3: timeline entries (docs/timeline.md). Entries are rows of messages
	// with target/target_seq/remove/members; an original keeps its state in
	// edited_at/edit_seq (the seq of the edit that set it, so a lower one
	// stored later loses) and deleted; reactions hold one row per (message,
	// emoji, user) with chatstate.ReactionState (the highest wins).
	3: `
ALTER TABLE messages ADD COLUMN target     TEXT    NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN target_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN remove     INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN members    TEXT    NOT NULL DEFAULT ''; -- JSON MembersChange of a members entry
ALTER TABLE messages ADD COLUMN edited_at  INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN edit_seq   INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN deleted    INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS messages_by_id ON messages (conversation_id, id);
CREATE TABLE IF NOT EXISTS reactions (
	conversation_id TEXT    NOT NULL,
	message_id      TEXT    NOT NULL,
	emoji           TEXT    NOT NULL,
	user_id         TEXT    NOT NULL,
	state           INTEGER NOT NULL,
	PRIMARY KEY (conversation_id, message_id, emoji, user_id)
) WITHOUT ROWID;
`,
}

const schema = `
CREATE TABLE IF NOT EXISTS messages (
	conversation_id   TEXT    NOT NULL,
	seq               INTEGER NOT NULL,
	id                TEXT    NOT NULL,
	sender_id         TEXT    NOT NULL,
	client_message_id TEXT,            -- NULL when the send had none: NULLs never conflict
	type              TEXT    NOT NULL,
	content           TEXT    NOT NULL,
	created_at        INTEGER NOT NULL,
	UNIQUE (conversation_id, seq),     -- also the history index
	UNIQUE (sender_id, client_message_id)
);
CREATE TABLE IF NOT EXISTS conversations (
	id         TEXT    PRIMARY KEY,
	created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS conversation_members (
	conversation_id TEXT    NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
	user_id         TEXT    NOT NULL,
	pos             INTEGER NOT NULL,
	PRIMARY KEY (conversation_id, user_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS conversation_members_by_user ON conversation_members (user_id, conversation_id);
CREATE TABLE IF NOT EXISTS users (
	id        TEXT    PRIMARY KEY,
	friends   TEXT    NOT NULL DEFAULT '[]', -- JSON array, read and replaced whole
	last_seen INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS device_tokens (
	user_id    TEXT    NOT NULL,
	device_id  TEXT    NOT NULL,
	platform   TEXT    NOT NULL,
	token      TEXT    NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (user_id, device_id)
) WITHOUT ROWID;
-- version 2: read positions (reads.go); CREATE IF NOT EXISTS migrates 1.
CREATE TABLE IF NOT EXISTS read_positions (
	conversation_id TEXT    NOT NULL,
	user_id         TEXT    NOT NULL,
	seq             INTEGER NOT NULL,
	PRIMARY KEY (conversation_id, user_id)
) WITHOUT ROWID;
`

// Store is a chatstate.Store on one SQLite file. It is safe for concurrent
// use.
type Store struct {
	cfg Config
	w   *sql.DB // exactly one connection: all writes
	r   *sql.DB // query-only pool

	insertMsg *sql.Stmt // on w
	clientDup *sql.Stmt // on w

	closeOnce sync.Once
	closed    atomic.Bool
	closeErr  error
}

var _ chatstate.Store = (*Store)(nil)

// Open opens (creating if missing, with its directory) the database at path
// and brings its schema up to date.
func Open(ctx context.Context, path string, cfg Config) (*Store, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") || strings.ContainsAny(path, "?#") {
		// A reader pool and a writer need one shared file.
		return nil, chatstate.Errorf(chatstate.EINVALID, "sqlite path must be a plain file path, not %q", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("sqlitestore: create data dir: %w", err)
	}
	s := &Store{cfg: cfg}
	var err error
	if s.w, err = openDB(path, cfg, false); err != nil {
		return nil, err
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxIdleTime(0)
	s.w.SetConnMaxLifetime(0)
	if err := s.migrate(ctx); err != nil {
		s.w.Close()
		return nil, err
	}
	if s.r, err = openDB(path, cfg, true); err != nil {
		s.w.Close()
		return nil, err
	}
	s.r.SetMaxOpenConns(cfg.ReadConns)
	s.r.SetMaxIdleConns(cfg.ReadConns)
	s.r.SetConnMaxLifetime(0)
	s.r.SetConnMaxIdleTime(0)
	if err := s.r.PingContext(ctx); err != nil {
		s.w.Close()
		s.r.Close()
		return nil, dbErr("open reader", err)
	}
	if s.insertMsg, err = s.w.PrepareContext(ctx, `INSERT INTO messages
		(conversation_id, seq, id, sender_id, client_message_id, type, content, created_at, target, target_seq, remove, members)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`); err == nil {
		s.clientDup, err = s.w.PrepareContext(ctx, `SELECT 1 FROM messages WHERE sender_id = ? AND client_message_id = ?`)
	}
	if err != nil {
		s.w.Close()
		s.r.Close()
		return nil, dbErr("prepare", err)
	}
	return s, nil
}

func openDB(path string, cfg Config, readOnly bool) (*sql.DB, error) {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", cfg.BusyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous("+cfg.Synchronous+")")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		// Take the write lock at BEGIN: a deferred transaction that reads
		// first could fail to upgrade with SQLITE_BUSY mid-way.
		q.Set("_txlock", "immediate")
	}
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	return db, nil
}

func (s *Store) migrate(ctx context.Context) error {
	var mode string
	if err := s.w.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return dbErr("open", err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("sqlitestore: journal_mode is %q, want wal", mode)
	}
	var version int
	if err := s.w.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return dbErr("read schema version", err)
	}
	if version > schemaVersion {
		return fmt.Errorf("sqlitestore: database schema version %d is newer than this build's %d", version, schemaVersion)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return dbErr("migrate", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return dbErr("create schema", err)
	}
	for v := max(version, 1) + 1; v <= schemaVersion; v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return dbErr(fmt.Sprintf("migrate to schema version %d", v), err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
		return dbErr("set schema version", err)
	}
	return dbErr("migrate", tx.Commit())
}

// Close closes both pools. Calls after the first return its result.
func (s *Store) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.closeErr = errors.Join(s.insertMsg.Close(), s.clientDup.Close(), s.r.Close())
		// A clean writer close checkpoints the WAL into the main file.
		s.closeErr = errors.Join(s.closeErr, s.w.Close())
	})
	return s.closeErr
}

// errClosed answers calls during shutdown: retryable, on another node.
var errClosed = &chatstate.Error{Code: chatstate.EUNAVAILABLE, Message: "the store is closed", RetryAfter: chatstate.OutageRetryAfter}

func (s *Store) check() error {
	if s.closed.Load() {
		return errClosed
	}
	return nil
}

// dbErr maps driver errors: lock timeouts are retryable (unavailable, with
// a short hint: another writer holds the lock for milliseconds), so is a
// ctx that ended while waiting (chatstate.Classify); the rest are internal
// and keep their text for logs only.
func dbErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return chatstate.Classify(err)
	}
	var ce *chatstate.Error
	if errors.As(err, &ce) {
		return err
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
			return &chatstate.Error{Code: chatstate.EUNAVAILABLE, Message: "the database is busy", RetryAfter: 100 * time.Millisecond}
		}
	}
	if errors.Is(err, sql.ErrConnDone) || strings.Contains(err.Error(), "database is closed") {
		return errClosed
	}
	return fmt.Errorf("sqlitestore: %s: %w", op, err)
}
