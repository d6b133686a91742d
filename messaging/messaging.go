// Package messaging is the message flow of the design: a send is persisted
// (group commit) before it is cached and fanned out, so an acknowledged
// message is durable; history reads the Redis cache first and falls back to
// the store for anything older than the cache holds.
package messaging

import (
	"context"
	"errors"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/cache"
)

// Cache is what the flow needs from the cache service (*cache.Cache).
type Cache interface {
	Reserve(ctx context.Context, conversationID, senderID, clientMessageID string) (cache.Reservation, error)
	SetSeqFloor(ctx context.Context, conversationID string, seq int64) (int64, error)
	LastSeq(ctx context.Context, conversationID string) (int64, error)
	AddMessageAndPublish(ctx context.Context, msg chatstate.Message, pub cache.Publish) (chatstate.Message, bool, error)
	Messages(ctx context.Context, conversationID string, afterSeq int64, limit int) ([]chatstate.Message, error)
}

// Config of the flow. Zero values mean the documented defaults.
type Config struct {
	// MaxBatch caps the messages of one group commit; zero means 256.
	MaxBatch int
	// Queue is how many sends may wait for a batch; zero means 4096.
	Queue int
	// AfterPersist, when set, runs after a message is persisted and before
	// it is cached and published: a fault-injection point for crash tests.
	AfterPersist func(chatstate.Message)
}

// Service sends and reads messages.
type Service struct {
	cache        Cache
	store        chatstate.MessageStore
	b            *batcher
	afterPersist func(chatstate.Message)
}

// New returns the flow; Run must be running for Send to make progress.
func New(c Cache, store chatstate.MessageStore, cfg Config) *Service {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 256
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 4096
	}
	return &Service{cache: c, store: store, afterPersist: cfg.AfterPersist,
		b: &batcher{store: store, max: cfg.MaxBatch, queue: make(chan *insert, cfg.Queue)}}
}

// Run writes batches until ctx ends.
func (s *Service) Run(ctx context.Context) { s.b.run(ctx) }

// Send persists msg, then caches and publishes it with pub in one step, and
// returns the stored message; duplicate is true for a resend of a
// (sender, clientMessageId) seen before, which returns the original and
// publishes it only if it never was (the node that stored it died before
// its fan-out).
func (s *Service) Send(ctx context.Context, msg chatstate.Message, pub cache.Publish) (chatstate.Message, bool, error) {
	if msg.ID == "" {
		msg.ID = chatstate.NewID()
	}
	if msg.Type == "" {
		msg.Type = "text"
	}
	if msg.CreatedAt == 0 {
		msg.CreatedAt = time.Now().UnixMilli()
	}
	for attempt := 0; ; attempt++ {
		r, err := s.reserve(ctx, msg)
		if err != nil {
			return msg, false, err
		}
		if r.Duplicate {
			return r.Cached, true, nil
		}
		msg.Seq = r.Seq
		err = s.b.insert(ctx, msg)
		switch {
		case err == nil:
			if s.afterPersist != nil {
				s.afterPersist(msg)
			}
			stored, _, err := s.cache.AddMessageAndPublish(ctx, msg, pub)
			return stored, false, err
		case errors.Is(err, chatstate.ErrDuplicateMessage):
			return s.resend(ctx, msg, pub)
		case errors.Is(err, chatstate.ErrSeqTaken) && attempt < 3:
			// The counter is behind the store (Redis lost data while
			// another node restored it): raise it and take a new seq.
			if err := s.restoreSeq(ctx, msg.ConversationID); err != nil {
				return msg, false, err
			}
		default:
			return msg, false, err
		}
	}
}

// resend answers a send whose (sender, clientMessageId) is already stored.
func (s *Service) resend(ctx context.Context, msg chatstate.Message, pub cache.Publish) (chatstate.Message, bool, error) {
	stored, err := s.store.MessageByClientID(ctx, msg.SenderID, msg.ClientMessageID)
	if err != nil {
		return msg, false, err
	}
	if stored.ConversationID != msg.ConversationID {
		return msg, false, chatstate.Errorf(chatstate.ECONFLICT, "clientMessageId was already used in another conversation")
	}
	// Caching publishes it unless it is cached (and so published) already.
	m, _, err := s.cache.AddMessageAndPublish(ctx, stored, pub)
	return m, true, err
}

// reserve answers a cached resend or takes the next seq, one round trip;
// a missing counter (new conversation, or Redis lost it) is first
// recovered from the store.
func (s *Service) reserve(ctx context.Context, msg chatstate.Message) (cache.Reservation, error) {
	r, err := s.cache.Reserve(ctx, msg.ConversationID, msg.SenderID, msg.ClientMessageID)
	if err != nil || !r.Missing {
		return r, err
	}
	if err := s.restoreSeq(ctx, msg.ConversationID); err != nil {
		return r, err
	}
	if r, err = s.cache.Reserve(ctx, msg.ConversationID, msg.SenderID, msg.ClientMessageID); err == nil && r.Missing {
		err = chatstate.Errorf(chatstate.EUNAVAILABLE, "sequence counter unavailable")
	}
	return r, err
}

func (s *Service) restoreSeq(ctx context.Context, conv string) error {
	last, err := s.store.LastSeq(ctx, conv)
	if err != nil {
		return err
	}
	_, err = s.cache.SetSeqFloor(ctx, conv, last)
	return err
}

// Sync returns up to limit messages with seq > afterSeq, ascending: from the
// cache when it holds them contiguously, else from the store.
func (s *Service) Sync(ctx context.Context, conv string, afterSeq int64, limit int) ([]chatstate.Message, error) {
	cached, err := s.cache.Messages(ctx, conv, afterSeq, limit)
	if err != nil {
		return nil, err
	}
	if len(cached) > 0 && cached[0].Seq == afterSeq+1 && contiguous(cached) {
		return cached, nil
	}
	if len(cached) == 0 {
		// Nothing cached after afterSeq: the client is up to date when the
		// counter says so, which spares the store the most common sync.
		last, err := s.cache.LastSeq(ctx, conv)
		if err != nil {
			return nil, err
		}
		if last > 0 && afterSeq >= last {
			return []chatstate.Message{}, nil
		}
	}
	return s.store.MessagesAfter(ctx, conv, afterSeq, limit)
}

// contiguous reports whether msgs has no seq gap. A gap in the cache is
// either a seq whose send failed or writes a Redis failover lost (the old
// master took them after its replica was promoted, or never replicated
// them) while the store has them: only the store can tell.
func contiguous(msgs []chatstate.Message) bool {
	for i := 1; i < len(msgs); i++ {
		if msgs[i].Seq != msgs[i-1].Seq+1 {
			return false
		}
	}
	return true
}

// Before returns up to limit messages with seq < beforeSeq, ascending (the
// history a client pages back through), from the store.
func (s *Service) Before(ctx context.Context, conv string, beforeSeq int64, limit int) ([]chatstate.Message, error) {
	return s.store.MessagesBefore(ctx, conv, beforeSeq, limit)
}
