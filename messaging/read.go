package messaging

import (
	"context"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/cache"
)

// Sync returns up to limit messages with seq > afterSeq, ascending, none
// above the settled watermark: from the cache when it holds them
// contiguously (it only ever holds settled messages), else from the store.
func (s *Service) Sync(ctx context.Context, conv string, afterSeq int64, limit int) ([]chatstate.Message, error) {
	cached, err := s.cache.Messages(ctx, conv, afterSeq, limit)
	if err != nil {
		return nil, err
	}
	verify := s.verifying()
	if len(cached) > 0 && cached[0].Seq == afterSeq+1 && contiguous(cached) && (!verify || len(cached) == limit) {
		return cached, nil
	}
	// The watermark is read before the store: everything at or below it
	// is already stored, whatever lands meanwhile.
	w, err := s.window(ctx, conv)
	if err != nil {
		return nil, err
	}
	if verify && !w.Missing {
		if w, err = s.catchUp(ctx, conv, w); err != nil {
			return nil, err
		}
	}
	if !w.Missing && afterSeq >= w.Settled {
		// Up to date: the most common sync never reaches the store.
		return []chatstate.Message{}, nil
	}
	msgs, err := s.store.MessagesAfter(ctx, conv, afterSeq, limit)
	if err != nil || w.Missing {
		// Missing: Redis lost the counter and with it what was pending;
		// the store is all there is.
		return msgs, err
	}
	return settledOnly(msgs, w.Settled), nil
}

// Verify makes reads check the store's last seq for d: after Redis lost
// writes (a failover promoting a replica that lagged, a restart) a
// conversation's counter, and so its watermark, can be behind messages
// that are stored and were acknowledged, until the next send there takes
// a seq the store already has. The gateway calls it before telling its
// clients to resync.
func (s *Service) Verify(d time.Duration) {
	s.verifyUntil.Store(time.Now().Add(d).UnixNano())
}

func (s *Service) verifying() bool { return time.Now().UnixNano() < s.verifyUntil.Load() }

// catchUp raises a counter that is behind the store to the store's last
// seq, and returns the window after it.
func (s *Service) catchUp(ctx context.Context, conv string, w cache.Window) (cache.Window, error) {
	last, err := s.store.LastSeq(ctx, conv)
	if err != nil || last <= w.Settled {
		return w, err
	}
	if _, err := s.cache.SetSeqFloor(ctx, conv, last); err != nil {
		return w, err
	}
	return s.window(ctx, conv)
}

// Before returns up to limit messages with seq < beforeSeq, ascending (the
// history a client pages back through), from the store, none above the
// settled watermark.
func (s *Service) Before(ctx context.Context, conv string, beforeSeq int64, limit int) ([]chatstate.Message, error) {
	w, err := s.window(ctx, conv)
	if err != nil {
		return nil, err
	}
	if !w.Missing && beforeSeq > w.Settled+1 {
		beforeSeq = w.Settled + 1
	}
	return s.store.MessagesBefore(ctx, conv, beforeSeq, limit)
}

// contiguous reports whether msgs has no seq gap. A gap in the cache is a
// skipped seq, or writes a Redis failover lost (the old master took them
// after its replica was promoted, or never replicated them) while the store
// has them: only the store can tell.
func contiguous(msgs []chatstate.Message) bool {
	for i := 1; i < len(msgs); i++ {
		if msgs[i].Seq != msgs[i-1].Seq+1 {
			return false
		}
	}
	return true
}

func settledOnly(msgs []chatstate.Message, settled int64) []chatstate.Message {
	for i, m := range msgs {
		if m.Seq > settled {
			return msgs[:i]
		}
	}
	return msgs
}

// LastSeq is the conversation's settled watermark: its highest seq a
// client may be shown (0 before the first message). When Redis has lost
// the counter the store's highest seq is all there is.
func (s *Service) LastSeq(ctx context.Context, conv string) (int64, error) {
	w, err := s.window(ctx, conv)
	if err != nil {
		return 0, err
	}
	if w.Missing {
		return s.store.LastSeq(ctx, conv)
	}
	return w.Settled, nil
}

// Message returns a stored message with its current state (edited,
// deleted, reactions): what an edit, delete or reaction is checked against.
func (s *Service) Message(ctx context.Context, conv, id string) (chatstate.Message, error) {
	return s.store.MessageByID(ctx, conv, id)
}
