package sqlitestore

import (
	"context"
	"database/sql"
	"time"
)

// checkpointEvery is how often the checkpointer moves the WAL into the
// database file.
const checkpointEvery = time.Second

// checkpointer copies the WAL into the database file from its own
// connection, so the writer never does. SQLite's automatic checkpoint runs
// inside the commit that crosses 1,000 WAL pages: that commit copies about
// 4 MB and fsyncs the database file while every send of the group commit
// waits behind it, one latency spike every few seconds under load. A
// PASSIVE checkpoint here takes no write lock, so commits go on meanwhile;
// the writer's wal_autocheckpoint is 0 (openDB).
type checkpointer struct {
	db   *sql.DB // one connection, used only for checkpoints
	stop chan struct{}
	done chan struct{}
}

func startCheckpointer(db *sql.DB) *checkpointer {
	c := &checkpointer{db: db, stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

func (c *checkpointer) run() {
	defer close(c.done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			// A failed checkpoint leaves the frames in the WAL for the
			// next one (and the writer's close): nothing is lost.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, _ = c.db.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
			cancel()
		}
	}
}

// close stops the checkpointer and closes its connection.
func (c *checkpointer) close() error {
	close(c.stop)
	<-c.done
	return c.db.Close()
}
