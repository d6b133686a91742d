package sqlitestore

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
)

// The writer never checkpoints (wal_autocheckpoint 0), so the database
// file only grows once the checkpointer copies the WAL into it.
func TestCheckpointerMovesTheWALIntoTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chat.db")
	s := open(t, path, Config{})
	defer s.Close(ctx(t))
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	for b := 0; b < 4; b++ {
		batch := make([]chatstate.Message, 500)
		for i := range batch {
			seq := int64(b*500 + i + 1)
			batch[i] = chatstate.Message{ID: "m" + strconv.FormatInt(seq, 10), ConversationID: "c1", SenderID: "alice",
				Content: "a message long enough to fill some pages of the write-ahead log", Type: "text", CreatedAt: seq, Seq: seq}
		}
		if errs, err := s.InsertMessages(ctx(t), batch); err != nil || errs[0] != nil {
			t.Fatalf("InsertMessages: %v %v", errs, err)
		}
	}
	deadline := time.Now().Add(20 * checkpointEvery)
	for {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > before.Size()+64<<10 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file %d bytes, %d before 2,000 inserts: the WAL was never checkpointed", fi.Size(), before.Size())
		}
		time.Sleep(50 * time.Millisecond) // polling the file size with a deadline
	}
}
