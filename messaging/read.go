package messaging

import (
	"context"

	"github.com/chatstate/chatstate"
)

// Sync returns up to limit messages with seq > afterSeq, ascending, none
// above the settled watermark: from the cache when it holds them
// contiguously (it only ever holds settled messages), else from the store.
func (s *Service) Sync(ctx context.Context, conv string, afterSeq int64, limit int) ([]chatstate.Message, error) {
	cached, err := s.cache.Messages(ctx, conv, afterSeq, limit)
	if err != nil {
		return nil, err
	}
	if len(cached) > 0 && cached[0].Seq == afterSeq+1 {
		return cached, nil
	}
	// The watermark is read before the store: everything at or below it
	// is already stored, whatever lands meanwhile.
	w, err := s.window(ctx, conv)
	if err != nil {
		return nil, err
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

func settledOnly(msgs []chatstate.Message, settled int64) []chatstate.Message {
	for i, m := range msgs {
		if m.Seq > settled {
			return msgs[:i]
		}
	}
	return msgs
}

// Message returns a stored message with its current state (edited,
// deleted, reactions): what an edit, delete or reaction is checked against.
func (s *Service) Message(ctx context.Context, conv, id string) (chatstate.Message, error) {
	return s.store.MessageByID(ctx, conv, id)
}
