package sqlitestore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/storetest"
)

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func open(t testing.TB, path string, cfg Config) *Store {
	t.Helper()
	s, err := Open(ctx(t), path, cfg)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, l chatstate.StoreLimits) (chatstate.Store, error) {
		return Open(ctx(t), filepath.Join(t.TempDir(), "data", "chat.db"), Config{StoreLimits: l})
	})
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := chatstate.ErrorCode(err); got != code {
		t.Fatalf("%s: error %v (code %q), want code %q", what, err, got, code)
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nested", "dir", "chat.db")
	s := open(t, path, Config{})
	msgs := []chatstate.Message{
		{ID: "m1", ConversationID: "c1", SenderID: "alice", Content: "hi 👋", Type: "text", CreatedAt: 10, Seq: 1, ClientMessageID: "k1"},
		{ID: "m2", ConversationID: "c1", SenderID: "bob", Content: "yo", Type: "text", CreatedAt: 11, Seq: 2},
	}
	if errs, err := s.InsertMessages(ctx(t), msgs); err != nil || errs[0] != nil || errs[1] != nil {
		t.Fatalf("InsertMessages = %v, %v", errs, err)
	}
	if _, err := s.CreateConversation(ctx(t), chatstate.Conversation{ID: "c1", Members: []string{"bob", "alice"}, CreatedAt: 5}); err != nil {
		t.Fatal(err)
	}
	tok := chatstate.DeviceToken{DeviceID: "d1", Platform: "android", Token: "tok", UpdatedAt: 7}
	for _, err := range []error{
		s.SetFriends(ctx(t), "alice", []string{"bob"}),
		s.SetLastSeen(ctx(t), "alice", 1234),
		s.SetDeviceToken(ctx(t), "alice", tok),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(ctx(t)); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(ctx(t)); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, err := s.LastSeq(ctx(t), "c1")
	wantCode(t, "LastSeq after Close", err, chatstate.EUNAVAILABLE)
	_, err = s.InsertMessages(ctx(t), msgs)
	wantCode(t, "InsertMessages after Close", err, chatstate.EUNAVAILABLE)

	s = open(t, path, Config{})
	defer s.Close(ctx(t))
	got, err := s.MessagesAfter(ctx(t), "c1", 0, 10)
	if err != nil || len(got) != 2 || got[0] != msgs[0] || got[1] != msgs[1] {
		t.Fatalf("after reopen MessagesAfter = %+v, %v", got, err)
	}
	if errs, err := s.InsertMessages(ctx(t), msgs[:1]); err != nil || errs[0] != chatstate.ErrDuplicateMessage {
		t.Fatalf("resend after reopen = %v, %v; want ErrDuplicateMessage", errs, err)
	}
	c, err := s.Conversation(ctx(t), "c1")
	if err != nil || len(c.Members) != 2 || c.Members[0] != "bob" || c.CreatedAt != 5 {
		t.Fatalf("after reopen Conversation = %+v, %v", c, err)
	}
	friends, err := s.Friends(ctx(t), "alice")
	if err != nil || len(friends) != 1 || friends[0] != "bob" {
		t.Fatalf("after reopen Friends = %v, %v", friends, err)
	}
	if at, err := s.LastSeen(ctx(t), "alice"); err != nil || at != 1234 {
		t.Fatalf("after reopen LastSeen = %d, %v", at, err)
	}
	if toks, err := s.DeviceTokens(ctx(t), "alice"); err != nil || len(toks) != 1 || toks[0] != tok {
		t.Fatalf("after reopen DeviceTokens = %+v, %v", toks, err)
	}
}

func TestOpenErrors(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file:x.db", filepath.Join(t.TempDir(), "a?b.db")} {
		_, err := Open(ctx(t), p, Config{})
		wantCode(t, "Open("+p+")", err, chatstate.EINVALID)
	}
	_, err := Open(ctx(t), filepath.Join(t.TempDir(), "x.db"), Config{Synchronous: "off"})
	wantCode(t, "Synchronous off", err, chatstate.EINVALID)
	_, err = Open(ctx(t), filepath.Join(t.TempDir(), "x.db"), Config{ReadConns: -1})
	wantCode(t, "negative ReadConns", err, chatstate.EINVALID)

	path := filepath.Join(t.TempDir(), "new.db")
	s := open(t, path, Config{})
	if _, err := s.w.ExecContext(ctx(t), `PRAGMA user_version = 99`); err != nil {
		t.Fatal(err)
	}
	s.Close(ctx(t))
	if _, err := Open(ctx(t), path, Config{}); err == nil {
		t.Fatal("Open accepted a database with a newer schema version")
	}
}

// The reader pool sees what the writer committed, and InsertMessages holds up
// when readers and writers run side by side.
func TestReadersBesideWriter(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "chat.db"), Config{ReadConns: 2})
	defer s.Close(ctx(t))
	done := make(chan error, 1)
	go func() {
		for seq := int64(1); seq <= 200; seq++ {
			errs, err := s.InsertMessages(ctx(t), []chatstate.Message{{ID: "m", ConversationID: "c", SenderID: "u", Content: "x", Type: "text", Seq: seq}})
			if err == nil {
				err = errs[0]
			}
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	var last int64
	for {
		n, err := s.LastSeq(ctx(t), "c")
		if err != nil {
			t.Fatal(err)
		}
		if n < last {
			t.Fatalf("LastSeq went back from %d to %d", last, n)
		}
		last = n
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := s.LastSeq(ctx(t), "c"); n != 200 {
				t.Fatalf("LastSeq after the writer finished = %d, want 200", n)
			}
			return
		default:
		}
	}
}

// A cancelled context fails the call without breaking the store: the
// transaction is rolled back and the writer connection is usable again.
func TestCancelledContext(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "chat.db"), Config{})
	defer s.Close(ctx(t))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	msg := chatstate.Message{ID: "m", ConversationID: "c", SenderID: "u", Content: "x", Type: "text", Seq: 1, ClientMessageID: "k"}
	if _, err := s.InsertMessages(cancelled, []chatstate.Message{msg}); !errors.Is(err, context.Canceled) {
		t.Fatalf("InsertMessages(cancelled) = %v, want context.Canceled", err)
	}
	if _, err := s.MessagesAfter(cancelled, "c", 0, 10); !errors.Is(err, context.Canceled) {
		t.Fatalf("MessagesAfter(cancelled) = %v, want context.Canceled", err)
	}
	if errs, err := s.InsertMessages(ctx(t), []chatstate.Message{msg}); err != nil || errs[0] != nil {
		t.Fatalf("insert after a cancelled one = %v, %v; want stored (nothing was left behind)", errs, err)
	}
}

// Two Stores on one file (two processes, or a restart overlapping the old
// one) wait for each other's write lock instead of failing.
func TestTwoStoresOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	a, b := open(t, path, Config{}), open(t, path, Config{})
	defer a.Close(ctx(t))
	defer b.Close(ctx(t))
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	for i, s := range []*Store{a, b} {
		wg.Go(func() {
			conv := fmt.Sprintf("c%d", i)
			for seq := int64(1); seq <= 100; seq++ {
				errs, err := s.InsertMessages(ctx(t), []chatstate.Message{{ID: "m", ConversationID: conv, SenderID: "u", Content: "x", Type: "text", Seq: seq}})
				if err == nil {
					err = errs[0]
				}
				if err != nil {
					errc <- fmt.Errorf("store %d seq %d: %w", i, seq, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	for _, s := range []*Store{a, b} {
		for _, conv := range []string{"c0", "c1"} {
			if n, err := s.LastSeq(ctx(t), conv); err != nil || n != 100 {
				t.Fatalf("LastSeq(%s) = %d, %v; want 100 seen from both stores", conv, n, err)
			}
		}
	}
}

// A file written by schema version 1 (before read positions and timeline
// entries) opens, keeps its messages and takes read positions, edits and
// reactions.
func TestMigrateFromVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	db, err := openDB(path, Config{BusyTimeout: time.Second, Synchronous: "FULL"}, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{schema, `DROP TABLE read_positions`, `PRAGMA user_version = 1`,
		`INSERT INTO messages (conversation_id, seq, id, sender_id, client_message_id, type, content, created_at)
			VALUES ('c', 1, 'm1', 'u', 'cm1', 'text', 'old', 5)`} {
		if _, err := db.ExecContext(ctx(t), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()
	s := open(t, path, Config{})
	defer s.Close(ctx(t))
	var v int
	if err := s.w.QueryRowContext(ctx(t), `PRAGMA user_version`).Scan(&v); err != nil || v != schemaVersion {
		t.Fatalf("user_version = %d, %v; want %d", v, err, schemaVersion)
	}
	want := chatstate.Message{ID: "m1", ConversationID: "c", SenderID: "u", ClientMessageID: "cm1", Type: "text", Content: "old", CreatedAt: 5, Seq: 1}
	if got, err := s.MessageByID(ctx(t), "c", "m1"); err != nil || got != want {
		t.Fatalf("migrated message = %+v, %v", got, err)
	}
	edit := chatstate.Message{ID: "e1", ConversationID: "c", SenderID: "u", Type: chatstate.TypeEdit, Content: "new", CreatedAt: 9, Seq: 2, Target: "m1", TargetSeq: 1}
	react := chatstate.Message{ID: "r1", ConversationID: "c", SenderID: "v", Type: chatstate.TypeReaction, Content: "👍", CreatedAt: 9, Seq: 3, Target: "m1", TargetSeq: 1}
	if errs, err := s.InsertMessages(ctx(t), []chatstate.Message{edit, react}); err != nil || errs[0] != nil || errs[1] != nil {
		t.Fatalf("insert entries: %v %v", errs, err)
	}
	got, err := s.MessageByID(ctx(t), "c", "m1")
	if err != nil || got.Content != "new" || got.EditedAt != 9 || got.Reactions == nil || len((*got.Reactions)["👍"]) != 1 {
		t.Fatalf("after entries = %+v, %v", got, err)
	}
	if seq, err := s.SetReadPosition(ctx(t), "c", "u", 1); err != nil || seq != 1 {
		t.Fatalf("SetReadPosition after the migration: %d, %v", seq, err)
	}
	s.Close(ctx(t))
	// Reopening a current file migrates nothing again.
	s2 := open(t, path, Config{})
	defer s2.Close(ctx(t))
	if got, err := s2.MessageByID(ctx(t), "c", "m1"); err != nil || got.Content != "new" {
		t.Fatalf("reopened = %+v, %v", got, err)
	}
}
