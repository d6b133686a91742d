// Package messaging is the message flow of the design: a send is persisted
// (group commit) before it is cached and fanned out, so an acknowledged
// message is durable; and no seq is shown to any client, live, in an ack or
// by a read, before every lower seq of its conversation is settled (stored
// and published, or skipped for good). docs/delivery.md explains why that
// makes "sync from the highest seq you saw" lossless. History reads the
// Redis cache first and falls back to the store for anything older.
package messaging

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/cache"
)

// Cache is what the flow needs from the cache service (*cache.Cache).
type Cache interface {
	ReserveFor(ctx context.Context, req cache.ReserveRequest) (cache.Reservation, error)
	Commit(ctx context.Context, msg chatstate.Message, pub cache.Publish) (cache.Committed, error)
	CommitMany(ctx context.Context, reqs []cache.CommitRequest) []cache.CommitResult
	Settle(ctx context.Context, conversationID string, skip int64) (cache.Window, error)
	SetSeqFloor(ctx context.Context, conversationID string, seq int64) (int64, error)
	Messages(ctx context.Context, conversationID string, afterSeq int64, limit int) ([]chatstate.Message, error)
}

// Config of the flow. Zero values mean the documented defaults.
type Config struct {
	// MaxBatch caps the messages of one group commit; zero means 256.
	MaxBatch int
	// Queue is how many sends may wait for a batch; zero means 4096.
	Queue int
	// PublishFor says how to publish a stored message this node settles on
	// behalf of a send it did not handle (one whose node died between its
	// store write and its commit). nil means such a message is cached but
	// not published live; clients still get it by sync.
	PublishFor func(ctx context.Context, msg chatstate.Message) (cache.Publish, error)
	// BeforePersist and AfterPersist, when set, run right before a message
	// is stored (its seq reserved) and right after (before its commit, on
	// the group commit's goroutine): fault-injection points for the
	// delivery tests.
	BeforePersist func(chatstate.Message)
	AfterPersist  func(chatstate.Message)
	// Reads persists read positions and orders the conversation list when
	// Redis lost it; Members looks a conversation's members up (the
	// directory). Without both, MarkRead, Reads and Conversations answer
	// unavailable.
	Reads   chatstate.ReadStore
	Members func(ctx context.Context, conversationID string) ([]string, error)
	// ListLimit is the page size of Conversations when the caller gives
	// none; zero means 20. MaxListLimit clamps larger requests; zero means
	// 100.
	ListLimit    int
	MaxListLimit int
	// MaxContentBytes caps a message's content; zero means
	// chatstate.DefaultMessageContentBytes (16 KiB).
	MaxContentBytes int
}

// Service sends and reads messages.
type Service struct {
	cache   Cache
	store   chatstate.MessageStore
	b       *batcher
	cfg     Config
	settled notifier
	// verifyUntil (unix ns): until then reads check the store's last seq,
	// because Redis may have lost writes (see Verify).
	verifyUntil atomic.Int64
}

// New returns the flow; Run must be running for Send to make progress.
func New(c Cache, store chatstate.MessageStore, cfg Config) *Service {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 256
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 4096
	}
	if cfg.MaxListLimit <= 0 {
		cfg.MaxListLimit = 100
	}
	if cfg.ListLimit <= 0 {
		cfg.ListLimit = min(20, cfg.MaxListLimit)
	}
	if cfg.MaxContentBytes <= 0 {
		cfg.MaxContentBytes = chatstate.DefaultMessageContentBytes
	}
	return &Service{cache: c, store: store, cfg: cfg,
		b: &batcher{store: store, cache: c, max: cfg.MaxBatch, queue: make(chan *insert, cfg.Queue), afterPersist: cfg.AfterPersist}}
}

// Run writes batches until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	s.b.run(ctx)
	return nil
}

// Sent is the outcome of Send.
type Sent struct {
	// Message as stored (for a resend: the original).
	Message chatstate.Message
	// Duplicate: a resend of a (sender, clientMessageId) stored before.
	Duplicate bool
	// Published: this call's pub carried the message's publication, so a
	// socket that pub excludes sees it arrive on its own user channel.
	Published bool
	// Echoed: the wait for the seq to settle ended on Route.Echo (the
	// publication already reached the caller), which it consumed.
	Echoed bool
}

// Send persists msg, then commits it with pub, and returns once its seq is
// settled: the ack of a send never shows a seq whose predecessors a client
// could still miss. A resend of a (sender, clientMessageId) returns the
// original, published only if it never was (its node died before).
func (s *Service) Send(ctx context.Context, msg chatstate.Message, pub cache.Publish) (Sent, error) {
	return s.SendTo(ctx, msg, Route{To: func(context.Context, []string) (cache.Publish, error) { return pub, nil }})
}

// Recipients returns the publication of a message. SendTo calls it after
// the message's seq is reserved with the members as of the reservation
// (read in the same atomic step), or with nil when Redis had no current
// copy of them: then it reads them itself, and it still reads them as of a
// moment after every lower seq was taken. Either way a membership change
// whose members entry took a lower seq is always seen, and a member it
// removed never receives this message. An error (forbidden: the sender was
// just removed) skips the reserved seq at once and fails the send.
type Recipients func(ctx context.Context, members []string) (cache.Publish, error)

// Route is how SendTo delivers a message.
type Route struct {
	// CheckSender: the sender must be a member; a non-member is refused
	// (forbidden) before any seq is taken.
	CheckSender bool
	// Limit, when set, counts the send against the sender's rate limit in
	// the reservation's round trip (rate_limited when denied).
	Limit *cache.Limit
	// To makes the publication from the members.
	To Recipients
	// Echo, when set, fires when this send's own publication reaches the
	// caller (the gateway's hub): published means settled, so a send
	// waiting for a lower seq held by another node stops waiting then
	// instead of polling the window.
	Echo <-chan struct{}
}

// SendTo is Send with the publication made from the members read with the
// seq's reservation: one round trip reserves the seq, reads the members,
// checks the sender and counts the rate limit; after the store write a
// second one commits and publishes.
//
// Message defaults (id, type "text", createdAt) and validation happen
// here, once, for every send: socket, backend and timeline entries alike.
// Callers only add the rules of their own surface (a client may not send
// entry types, for one); the store checks its own limits again at its
// boundary.
func (s *Service) SendTo(ctx context.Context, msg chatstate.Message, route Route) (Sent, error) {
	if msg.ID == "" {
		msg.ID = chatstate.NewID()
	}
	if msg.Type == "" {
		msg.Type = "text"
	}
	if msg.CreatedAt == 0 {
		msg.CreatedAt = time.Now().UnixMilli()
	}
	if err := msg.Validate(s.cfg.MaxContentBytes); err != nil {
		return Sent{}, err
	}
	for attempt := 0; ; attempt++ {
		r, err := s.reserve(ctx, msg, route.CheckSender, route.Limit)
		if err != nil {
			return Sent{}, err
		}
		route.Limit = nil // counted once per send
		if r.Duplicate {
			return Sent{Message: r.Cached, Duplicate: true}, nil
		}
		msg.Seq = r.Seq
		pub, err := route.To(ctx, r.Members)
		if err != nil {
			// Nothing will be stored under r.Seq.
			if _, serr := s.cache.Settle(ctx, msg.ConversationID, r.Seq); serr != nil {
				return Sent{}, serr
			}
			return Sent{}, err
		}
		if s.cfg.BeforePersist != nil {
			s.cfg.BeforePersist(msg)
		}
		res := s.b.insert(ctx, msg, pub)
		switch err = res.stored; {
		case err == nil:
			if res.commitErr != nil {
				return Sent{}, res.commitErr
			}
			return s.committed(ctx, msg, res.committed, false, route.Echo)
		case errors.Is(err, chatstate.ErrDuplicateMessage):
			// The store refused the row, so nothing will ever be stored
			// under r.Seq: skip it now instead of stalling the conversation
			// until it times out.
			if _, err := s.cache.Settle(ctx, msg.ConversationID, r.Seq); err != nil {
				return Sent{}, err
			}
			return s.resend(ctx, msg, pub, route.Echo)
		case errors.Is(err, chatstate.ErrSeqTaken) && attempt < 3:
			// A skip marker took the seq (this write came after the settle
			// timeout), or the counter is behind the store (Redis lost
			// data while another node restored it): take a new seq.
			if err := s.restoreSeq(ctx, msg.ConversationID); err != nil {
				return Sent{}, err
			}
		case code(err, chatstate.EINVALID, chatstate.ETOOLARGE):
			// The store refused this message outright, so nothing will be
			// stored under r.Seq either.
			if _, serr := s.cache.Settle(ctx, msg.ConversationID, r.Seq); serr != nil {
				return Sent{}, serr
			}
			return Sent{}, err
		default:
			// Maybe stored, maybe not: the seq settles by its timeout.
			return Sent{}, err
		}
	}
}

func code(err error, codes ...string) bool {
	c := chatstate.ErrorCode(err)
	for _, want := range codes {
		if c == want {
			return true
		}
	}
	return false
}

// resend answers a send whose (sender, clientMessageId) is already stored.
func (s *Service) resend(ctx context.Context, msg chatstate.Message, pub cache.Publish, echo <-chan struct{}) (Sent, error) {
	stored, err := s.store.MessageByClientID(ctx, msg.SenderID, msg.ClientMessageID)
	if err != nil {
		return Sent{}, err
	}
	if stored.ConversationID != msg.ConversationID {
		return Sent{}, chatstate.Errorf(chatstate.ECONFLICT, "clientMessageId was already used in another conversation")
	}
	// Committing publishes it unless it was published already.
	return s.commit(ctx, stored, pub, true, echo)
}

// commit commits a stored message and waits until its seq is settled (or,
// when the commit published it, until echo says it arrived).
func (s *Service) commit(ctx context.Context, msg chatstate.Message, pub cache.Publish, dup bool, echo <-chan struct{}) (Sent, error) {
	c, err := s.cache.Commit(ctx, msg, pub)
	if err != nil {
		return Sent{}, err
	}
	return s.committed(ctx, msg, c, dup, echo)
}

// committed waits until a committed message's seq is settled.
func (s *Service) committed(ctx context.Context, msg chatstate.Message, c cache.Committed, dup bool, echo <-chan struct{}) (Sent, error) {
	s.settled.notify(msg.ConversationID)
	if c.Already {
		echo = nil // no publication of this call to wait for
	}
	echoed, err := s.await(ctx, msg.ConversationID, msg.Seq, c.Window, echo)
	if err != nil {
		return Sent{}, err
	}
	return Sent{Message: c.Message, Duplicate: dup, Published: !c.Already, Echoed: echoed}, nil
}

// reserve answers a cached resend or takes the next seq, one round trip;
// a missing counter (new conversation, or Redis lost it) is first
// recovered from the store, and members Redis does not hold are first
// filled from the directory.
func (s *Service) reserve(ctx context.Context, msg chatstate.Message, checkSender bool, limit *cache.Limit) (cache.Reservation, error) {
	req := cache.ReserveRequest{ConversationID: msg.ConversationID, SenderID: msg.SenderID, ClientMessageID: msg.ClientMessageID, Limit: limit}
	for try := 0; ; try++ {
		req.CheckSender = checkSender
		r, err := s.cache.ReserveFor(ctx, req)
		req.Limit = nil // counted by the first call
		switch {
		case err != nil:
			return r, err
		case r.NeedMembers:
			if try > 0 || s.cfg.Members == nil {
				// The directory refuses fills right after a change: the
				// recipients read after the reservation checks the sender.
				checkSender = false
				continue
			}
			members, err := s.cfg.Members(ctx, msg.ConversationID)
			if err != nil {
				return r, err
			}
			if !slices.Contains(members, msg.SenderID) {
				return r, chatstate.Errorf(chatstate.EFORBIDDEN, "not a member of this conversation")
			}
		case r.Missing:
			if try > 2 {
				return r, &chatstate.Error{Code: chatstate.EUNAVAILABLE, Message: "sequence counter unavailable", RetryAfter: time.Second}
			}
			if err := s.restoreSeq(ctx, msg.ConversationID); err != nil {
				return r, err
			}
		default:
			return r, nil
		}
	}
}

func (s *Service) restoreSeq(ctx context.Context, conv string) error {
	last, err := s.store.LastSeq(ctx, conv)
	if err != nil {
		return err
	}
	_, err = s.cache.SetSeqFloor(ctx, conv, last)
	return err
}
