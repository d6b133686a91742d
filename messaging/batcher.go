package messaging

import (
	"context"

	"github.com/chatstate/chatstate"
)

// insert is one message waiting for the group commit.
type insert struct {
	msg  chatstate.Message
	done chan error
}

// batcher group-commits concurrent sends: while one batch is being written,
// new messages queue up and go out together in the next one. A lone send
// waits for nothing; under load the store sees few, large writes.
type batcher struct {
	store chatstate.MessageStore
	max   int
	queue chan *insert
}

func (b *batcher) run(ctx context.Context) {
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
		// The batch is written even if one sender gave up waiting: its
		// message may be acknowledged by a resend later.
		results, err := b.store.InsertMessages(context.WithoutCancel(ctx), msgs)
		for i, in := range batch {
			switch {
			case err != nil:
				in.done <- err
			case i < len(results):
				in.done <- results[i]
			default:
				in.done <- chatstate.Errorf(chatstate.EINTERNAL, "store returned %d results for %d messages", len(results), len(msgs))
			}
		}
	}
}

// insert queues msg and waits for its batch.
func (b *batcher) insert(ctx context.Context, msg chatstate.Message) error {
	in := &insert{msg: msg, done: make(chan error, 1)}
	select {
	case b.queue <- in:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-in.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
