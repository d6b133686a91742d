package messaging

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/cache"
)

// ReadCache is what read positions and the conversation list need from the
// cache service (*cache.Cache).
type ReadCache interface {
	MarkRead(ctx context.Context, conv, user string, seq int64, interval time.Duration) (cache.ReadMark, error)
	FillReads(ctx context.Context, conv string, reads map[string]int64) error
	Reads(ctx context.Context, conv string) (map[string]int64, bool, error)
	FillSummary(ctx context.Context, conv string, lastSeq int64, last *chatstate.Message, counted ...int64) error
	Summaries(ctx context.Context, user string, convs []string) ([]cache.Summary, error)
	ConversationPage(ctx context.Context, user string, limit int, cursor string) (cache.ListPage, error)
	FillConversationList(ctx context.Context, user string, list []chatstate.ConversationActivity) error
	RemoveFromConversationList(ctx context.Context, user, conv string) error
	TouchConversation(ctx context.Context, conv string, at int64, users []string) error
}

// errNoReads answers when the flow was built without Config.Reads.
var errNoReads = chatstate.Unavailable("read positions", errors.New("no read store configured"))

func (s *Service) readDeps() (ReadCache, chatstate.ReadStore, error) {
	rc, ok := s.cache.(ReadCache)
	if !ok || s.cfg.Reads == nil {
		return nil, nil, errNoReads
	}
	return rc, s.cfg.Reads, nil
}

// MarkRead raises user's read position in conv to seq (capped at the last
// published seq, never down) and persists it; the mark says whether a
// receipt may be sent now or after mark.Wait (cache.MarkRead). seq 0 only
// flushes a held-back receipt. The caller checked membership.
func (s *Service) MarkRead(ctx context.Context, conv, user string, seq int64, interval time.Duration) (cache.ReadMark, error) {
	rc, store, err := s.readDeps()
	if err != nil {
		return cache.ReadMark{}, err
	}
	var m cache.ReadMark
	for attempt := 0; ; attempt++ {
		if m, err = rc.MarkRead(ctx, conv, user, seq, interval); err != nil {
			return m, err
		}
		switch {
		case attempt == 3 && (m.NotFilled || m.NoSummary):
			return m, &chatstate.Error{Code: chatstate.EUNAVAILABLE, Message: "read positions are being restored", RetryAfter: time.Second}
		case m.NotFilled:
			err = s.fillReads(ctx, rc, store, conv)
		case m.NoSummary:
			err = s.fillSummary(ctx, rc, conv)
		default:
			if m.Seq > 0 && (m.Raised || seq >= m.Seq) {
				// Written after Redis, so the store never holds a position
				// Redis refused (past the last seq). Also when not raised
				// but asked for (seq >= the position): a retry after this
				// write failed must still store it. A read behind the
				// position (another device was ahead) writes nothing.
				_, err = store.SetReadPosition(ctx, conv, user, m.Seq)
			}
			return m, err
		}
		if err != nil {
			return m, err
		}
	}
}

// Reads returns conv's read positions by user, filled from the store when
// Redis lost them.
func (s *Service) Reads(ctx context.Context, conv string) (map[string]int64, error) {
	rc, store, err := s.readDeps()
	if err != nil {
		return nil, err
	}
	reads, filled, err := rc.Reads(ctx, conv)
	if err != nil || filled {
		return reads, err
	}
	if err := s.fillReads(ctx, rc, store, conv); err != nil {
		return nil, err
	}
	reads, _, err = rc.Reads(ctx, conv)
	return reads, err
}

// fillReads restores conv's read positions after Redis lost them: the
// store's, each raised to the member's own last counted message among the
// recent ones (a member has read what it sent; that is not written to the
// store on every send).
func (s *Service) fillReads(ctx context.Context, rc ReadCache, store chatstate.ReadStore, conv string) error {
	reads, err := store.ReadPositions(ctx, conv)
	if err != nil {
		return err
	}
	_, msgs, err := s.recent(ctx, conv)
	if err != nil {
		return err
	}
	for _, m := range msgs {
		if chatstate.CountsAsUnread(m.Type) && reads[m.SenderID] < m.Seq {
			reads[m.SenderID] = m.Seq
		}
	}
	return rc.FillReads(ctx, conv, reads)
}

// refillPage is how many recent messages a refill reads: unread counts
// are exact again up to it after Redis lost its data.
const refillPage = 100

// recent returns conv's last settled seq and its last refillPage stored
// messages, for refills.
func (s *Service) recent(ctx context.Context, conv string) (int64, []chatstate.Message, error) {
	w, err := s.window(ctx, conv)
	if err != nil {
		return 0, nil, err
	}
	last, err := s.store.LastSeq(ctx, conv)
	if err != nil {
		return 0, nil, err
	}
	if !w.Missing && last > w.Settled {
		last = w.Settled
	}
	msgs, err := s.store.MessagesBefore(ctx, conv, last+1, refillPage)
	return last, msgs, err
}

// fillSummary restores conv's summary after Redis lost it: the last
// settled seq and the counted messages among the recent ones.
func (s *Service) fillSummary(ctx context.Context, rc ReadCache, conv string) error {
	last, msgs, err := s.recent(ctx, conv)
	if err != nil {
		return err
	}
	var (
		lastMsg *chatstate.Message
		counted []int64
	)
	for i := range msgs {
		if chatstate.CountsAsUnread(msgs[i].Type) {
			lastMsg = &msgs[i]
			counted = append(counted, msgs[i].Seq)
		}
	}
	return rc.FillSummary(ctx, conv, last, lastMsg, counted...)
}

// ConversationEntry is one conversation of a user's list.
type ConversationEntry struct {
	ID           string             `json:"id"`
	Members      []string           `json:"members"`
	LastMessage  *chatstate.Message `json:"lastMessage"` // null before the first counted message
	LastSeq      int64              `json:"lastSeq"`
	ReadSeq      int64              `json:"readSeq"`
	Unread       int64              `json:"unread"`
	LastActivity int64              `json:"lastActivity"` // epoch ms
}

// ConversationPage is one page of a user's list.
type ConversationPage struct {
	Conversations []ConversationEntry
	// Cursor continues after this page; "" on the last one.
	Cursor string
}

// ConversationCreated puts a new conversation into its members' cached
// lists (lists not cached get it from the store when filled).
func (s *Service) ConversationCreated(ctx context.Context, c chatstate.Conversation) error {
	rc, _, err := s.readDeps()
	if err != nil {
		return err
	}
	return rc.TouchConversation(ctx, c.ID, c.CreatedAt, c.Members)
}

// Reply is the wire shape of a page (socket ack and HTTP body):
// {conversations, cursor}, cursor null on the last page.
func (p ConversationPage) Reply() map[string]any {
	var cursor any
	if p.Cursor != "" {
		cursor = p.Cursor
	}
	convs := p.Conversations
	if convs == nil {
		convs = []ConversationEntry{}
	}
	return map[string]any{"conversations": convs, "cursor": cursor}
}

// Conversations returns a page of user's conversations, most recent
// activity first, after cursor ("" = from the top). limit 0 means
// Config.ListLimit; above Config.MaxListLimit it is clamped. The Redis work
// is O(limit) (three pipelined round trips); the store is read only to
// repair what Redis lost. A page can be shorter than limit when the user
// left some of its conversations; the cursor still continues.
func (s *Service) Conversations(ctx context.Context, user string, limit int, cursor string) (ConversationPage, error) {
	rc, store, err := s.readDeps()
	if err != nil {
		return ConversationPage{}, err
	}
	if limit < 0 {
		return ConversationPage{}, chatstate.Errorf(chatstate.EINVALID, "limit must not be negative")
	}
	if limit == 0 {
		limit = s.cfg.ListLimit
	}
	limit = min(limit, s.cfg.MaxListLimit)
	page, err := rc.ConversationPage(ctx, user, limit, cursor)
	if err == nil && page.Missing {
		var list []chatstate.ConversationActivity
		if list, err = store.ConversationActivity(ctx, user); err != nil {
			return ConversationPage{}, err
		}
		if err = rc.FillConversationList(ctx, user, list); err != nil {
			return ConversationPage{}, err
		}
		page, err = rc.ConversationPage(ctx, user, limit, cursor)
	}
	if err != nil {
		return ConversationPage{}, err
	}
	ids := make([]string, len(page.Entries))
	for i, a := range page.Entries {
		ids[i] = a.ID
	}
	members, err := s.membersOf(ctx, ids)
	if err != nil {
		return ConversationPage{}, err
	}
	sums, err := s.summaries(ctx, rc, store, user, ids)
	if err != nil {
		return ConversationPage{}, err
	}
	out := ConversationPage{Conversations: make([]ConversationEntry, 0, len(ids)), Cursor: page.Cursor}
	for i, a := range page.Entries {
		if !slices.Contains(members[i], user) {
			// Left or removed (or the conversation is gone): the cached
			// list forgets it; the store's list no longer has it.
			_ = rc.RemoveFromConversationList(ctx, user, a.ID)
			continue
		}
		sm := sums[i]
		out.Conversations = append(out.Conversations, ConversationEntry{ID: a.ID, Members: members[i], LastMessage: sm.LastMessage,
			LastSeq: sm.LastSeq, ReadSeq: sm.ReadSeq, Unread: sm.Unread, LastActivity: a.LastActivity})
	}
	return out, nil
}

// summaries reads the page's summaries, repairing once what Redis lost.
func (s *Service) summaries(ctx context.Context, rc ReadCache, store chatstate.ReadStore, user string, ids []string) ([]cache.Summary, error) {
	sums, err := rc.Summaries(ctx, user, ids)
	if err != nil {
		return nil, err
	}
	repaired := false
	for _, sm := range sums {
		if sm.Missing {
			if err := s.fillSummary(ctx, rc, sm.ConversationID); err != nil {
				return nil, err
			}
			repaired = true
		}
		if !sm.ReadsFilled {
			if err := s.fillReads(ctx, rc, store, sm.ConversationID); err != nil {
				return nil, err
			}
			repaired = true
		}
	}
	if repaired {
		return rc.Summaries(ctx, user, ids)
	}
	return sums, nil
}

// membersOf looks the members of every conversation up concurrently (one
// round trip on cache hits); an unknown conversation has none.
func (s *Service) membersOf(ctx context.Context, ids []string) ([][]string, error) {
	out := make([][]string, len(ids))
	if s.cfg.Members == nil {
		return out, errNoReads
	}
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = s.cfg.Members(ctx, id)
			if chatstate.ErrorCode(errs[i]) == chatstate.ENOTFOUND {
				out[i], errs[i] = nil, nil
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}
