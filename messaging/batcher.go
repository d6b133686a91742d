package messaging

import (
	"context"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/cache"
)

// insert is one message waiting for the group commit.
type insert struct {
	msg  chatstate.Message
	pub  cache.Publish
	done chan inserted
}

// inserted is the outcome of an insert: the store's answer, and for a
// stored message its commit.
type inserted struct {
	stored    error // nil: stored
	committed cache.Committed
	commitErr error
}

// batcher group-commits concurrent sends: while one batch is being written,
// new messages queue up and go out together in the next one. A lone send
// waits for nothing; under load the store sees few, large writes. The
// stored messages of a batch are then committed to Redis together, in seq
// order, in one round trip: one by one from their senders' goroutines they
// would reach Redis in any order, and each one above a lower pending seq
// would have to wait for it.
type batcher struct {
	store chatstate.MessageStore
	cache Cache
	max   int
	queue chan *insert
	// afterPersist runs for each stored message before its commit
	// (Config.AfterPersist).
	afterPersist func(chatstate.Message)
}

// toCommit is a written batch's stored messages, for the committer.
type toCommit struct {
	reqs []cache.CommitRequest
	ins  []*insert
}

func (b *batcher) run(ctx context.Context) {
	// The committer commits batches in the order they were written, while
	// the next batch is being written.
	commitq := make(chan toCommit, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for tc := range commitq {
			for i, r := range b.cache.CommitMany(context.WithoutCancel(ctx), tc.reqs) {
				tc.ins[i].done <- inserted{committed: r.Committed, commitErr: r.Err}
			}
		}
	}()
	defer func() {
		close(commitq)
		<-done
	}()
	batch := make([]*insert, 0, b.max)
	msgs := make([]chatstate.Message, 0, b.max)
	for {
		select {
		case <-ctx.Done():
			return
		case first := <-b.queue:
			batch = append(batch[:0], first)
		}
	drain:
		for len(batch) < b.max {
			select {
			case in := <-b.queue:
				batch = append(batch, in)
			default:
				break drain
			}
		}
		msgs = msgs[:0]
		for _, in := range batch {
			msgs = append(msgs, in.msg)
		}
		// The batch is written and committed even if one sender gave up
		// waiting: its message may be acknowledged by a resend later.
		wctx := context.WithoutCancel(ctx)
		results, err := b.store.InsertMessages(wctx, msgs)
		var tc toCommit
		for i, in := range batch {
			switch {
			case err != nil:
				in.done <- inserted{stored: err}
			case i >= len(results):
				in.done <- inserted{stored: chatstate.Errorf(chatstate.EINTERNAL, "store returned %d results for %d messages", len(results), len(msgs))}
			case results[i] != nil:
				in.done <- inserted{stored: results[i]}
			default:
				if b.afterPersist != nil {
					b.afterPersist(in.msg)
				}
				tc.reqs = append(tc.reqs, cache.CommitRequest{Message: in.msg, Publish: in.pub})
				tc.ins = append(tc.ins, in)
			}
		}
		if len(tc.reqs) > 0 {
			commitq <- tc
		}
	}
}

// insert queues msg, to be committed with pub once stored, and waits for
// its batch.
func (b *batcher) insert(ctx context.Context, msg chatstate.Message, pub cache.Publish) inserted {
	in := &insert{msg: msg, pub: pub, done: make(chan inserted, 1)}
	select {
	case b.queue <- in:
	case <-ctx.Done():
		return inserted{stored: ctx.Err()}
	}
	select {
	case r := <-in.done:
		return r
	case <-ctx.Done():
		return inserted{stored: ctx.Err()}
	}
}
