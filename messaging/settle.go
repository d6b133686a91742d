package messaging

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/cache"
)

// maxPoll bounds the wait between two looks at a conversation's window
// while a send waits for a lower seq held by another node; a commit on this
// node wakes its waiters at once.
const maxPoll = 20 * time.Millisecond

// await returns once seq is settled, or once echo fires (the caller got
// the seq's publication, so it is settled), reporting which. A lower seq
// whose settle timeout has passed is settled here: published if its
// message reached the store, skipped for good otherwise.
func (s *Service) await(ctx context.Context, conv string, seq int64, w cache.Window, echo <-chan struct{}) (bool, error) {
	poll := time.Millisecond
	if echo != nil {
		// The echo usually ends the wait; polling is for a head whose
		// node died (settled at its timeout) and for a lost echo.
		poll = 5 * time.Millisecond
	}
	var timer *time.Timer
	for !w.Missing && w.Settled < seq {
		var err error
		if w.Head > 0 && w.HeadWait == 0 {
			if w, err = s.settleHead(ctx, conv, w.Head); err != nil {
				return false, err
			}
			continue
		}
		changed := s.settled.wait(conv)
		if timer == nil {
			timer = time.NewTimer(poll)
			defer timer.Stop()
		} else {
			timer.Reset(poll)
		}
		select {
		case <-ctx.Done():
			return false, &chatstate.Error{Code: chatstate.EUNAVAILABLE, RetryAfter: time.Second,
				Message: "the message is stored but an earlier one is not settled yet; resend with the same clientMessageId"}
		case <-echo:
			return true, nil
		case <-changed:
		case <-timer.C:
		}
		poll = min(poll*2, maxPoll)
		if w, err = s.cache.Settle(ctx, conv, 0); err != nil {
			return false, err
		}
	}
	return false, nil
}

// settleHead settles a pending seq past its settle timeout. A skip marker
// is written to the store first: the store's unique (conversation, seq)
// decides between the marker and a late write of the original, so a skipped
// seq can never be filled after readers moved past it.
func (s *Service) settleHead(ctx context.Context, conv string, head int64) (cache.Window, error) {
	errs, err := s.store.InsertMessages(ctx, []chatstate.Message{chatstate.SkipMarker(conv, head, time.Now().UnixMilli())})
	if err != nil {
		return cache.Window{}, err
	}
	if len(errs) != 1 {
		return cache.Window{}, chatstate.Errorf(chatstate.EINTERNAL, "store returned %d results for 1 message", len(errs))
	}
	switch {
	case errs[0] == nil:
	case errors.Is(errs[0], chatstate.ErrSeqTaken):
		// The original was stored after all (or another node wrote the
		// marker, which reads leave out).
		msgs, err := s.store.MessagesAfter(ctx, conv, head-1, 1)
		if err != nil {
			return cache.Window{}, err
		}
		if len(msgs) == 1 && msgs[0].Seq == head {
			return s.commitFound(ctx, msgs[0])
		}
	default:
		return cache.Window{}, errs[0]
	}
	w, err := s.cache.Settle(ctx, conv, head)
	if err == nil {
		s.settled.notify(conv)
	}
	return w, err
}

// commitFound commits a stored message whose own send did not.
func (s *Service) commitFound(ctx context.Context, msg chatstate.Message) (cache.Window, error) {
	var pub cache.Publish
	if s.cfg.PublishFor != nil {
		var err error
		if pub, err = s.cfg.PublishFor(ctx, msg); err != nil {
			return cache.Window{}, err
		}
	}
	c, err := s.cache.Commit(ctx, msg, pub)
	if err != nil {
		return cache.Window{}, err
	}
	s.settled.notify(msg.ConversationID)
	return c.Window, nil
}

// window returns a conversation's settled window for a read, settling an
// expired head first so a dead node's seq holds readers back no longer than
// the settle timeout even when nobody sends.
func (s *Service) window(ctx context.Context, conv string) (cache.Window, error) {
	w, err := s.cache.Settle(ctx, conv, 0)
	if err == nil && w.Head > 0 && w.HeadWait == 0 {
		w, err = s.settleHead(ctx, conv, w.Head)
	}
	return w, err
}

// notifier wakes this node's waiters of a conversation when its window may
// have moved; waiters on other nodes poll.
type notifier struct {
	mu sync.Mutex
	ch map[string]chan struct{}
}

// wait returns a channel closed at the conversation's next notify.
func (n *notifier) wait(conv string) <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.ch == nil {
		n.ch = make(map[string]chan struct{})
	}
	c := n.ch[conv]
	if c == nil {
		c = make(chan struct{})
		n.ch[conv] = c
	}
	return c
}

func (n *notifier) notify(conv string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if c := n.ch[conv]; c != nil {
		close(c)
		delete(n.ch, conv)
	}
}
