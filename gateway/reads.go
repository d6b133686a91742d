package gateway

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/cache"
	"github.com/chatstate/chatstate/messaging"
	"github.com/chatstate/chatstate/socketio"
)

// Reads is read positions and the conversation list (messaging.Service).
type Reads interface {
	MarkRead(ctx context.Context, conv, user string, seq int64, interval time.Duration) (cache.ReadMark, error)
	Reads(ctx context.Context, conv string) (map[string]int64, error)
	Conversations(ctx context.Context, user string, limit int, cursor string) (messaging.ConversationPage, error)
}

var errNoReads = chatstate.Unavailable("read positions", errors.New("gateway built without Deps.Reads"))

// handleRead is message:read {conversationId, seq}: the ack carries the
// read position; a receipt goes to every device of every member (the
// reader's other devices too) except the reading socket, at most one per
// reader and conversation per ReceiptInterval across nodes. A receipt held
// back by the interval goes when it has passed, with the latest position.
func (g *Gateway) handleRead(ctx context.Context, cl *client, ev *socketio.Event) (map[string]any, error) {
	if g.deps.Reads == nil {
		return nil, errNoReads
	}
	var req struct {
		ConversationID string `json:"conversationId"`
		Seq            *int64 `json:"seq"`
	}
	if err := decodeArg(ev, &req); err != nil {
		return nil, err
	}
	if req.Seq == nil || *req.Seq < 1 || *req.Seq >= chatstate.MaxSeq {
		return nil, chatstate.Errorf(chatstate.EINVALID, "seq is required: the highest seq read, at least 1")
	}
	members, err := g.members(ctx, cl, req.ConversationID)
	if err != nil {
		return nil, err
	}
	m, err := g.deps.Reads.MarkRead(ctx, req.ConversationID, cl.userID, *req.Seq, g.cfg.ReceiptInterval)
	if err != nil {
		return nil, err
	}
	if m.Receipt > 0 {
		g.publishTo(ctx, members, cl.conn.ID(), "receipt", receiptEvent(req.ConversationID, cl.userID, m.Receipt))
	}
	if m.Wait > 0 {
		g.receipts.schedule(g, req.ConversationID, cl.userID, m.Wait)
	}
	return map[string]any{"readSeq": m.Seq}, nil
}

func receiptEvent(conv, user string, seq int64) map[string]any {
	return map[string]any{"conversationId": conv, "userId": user, "seq": seq}
}

// receiptTimers holds this node's held-back receipts, one timer per
// (conversation, reader): later reads within the interval only move the
// position the timer will announce.
type receiptTimers struct {
	mu     sync.Mutex
	timers map[[2]string]*time.Timer
	closed bool
}

func (r *receiptTimers) schedule(g *Gateway, conv, user string, wait time.Duration) {
	key := [2]string{conv, user}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.timers[key] != nil {
		return
	}
	if r.timers == nil {
		r.timers = map[[2]string]*time.Timer{}
	}
	// A little past the wait, so the flush finds the interval over.
	r.timers[key] = time.AfterFunc(wait+5*time.Millisecond, func() { g.flushReceipt(conv, user) })
}

func (r *receiptTimers) done(conv, user string) {
	r.mu.Lock()
	delete(r.timers, [2]string{conv, user})
	r.mu.Unlock()
}

// stop cancels every held-back receipt (Close): the receipts are lost, the
// positions are not (sync's reads and the list carry them).
func (r *receiptTimers) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for _, t := range r.timers {
		t.Stop()
	}
	r.timers = nil
}

func (g *Gateway) flushReceipt(conv, user string) {
	g.receipts.done(conv, user)
	if !g.tasks.add() {
		return
	}
	defer g.tasks.done()
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.EventTimeout)
	defer cancel()
	m, err := g.deps.Reads.MarkRead(ctx, conv, user, 0, g.cfg.ReceiptInterval)
	if err != nil {
		g.log.Warn("held-back receipt not sent", "conversation", conv, "user", user, "err", err)
		return
	}
	if m.Receipt > 0 {
		members, err := g.deps.Directory.Members(ctx, conv)
		if err != nil {
			g.log.Warn("held-back receipt not sent", "conversation", conv, "user", user, "err", err)
			return
		}
		g.publishTo(ctx, members, "", "receipt", receiptEvent(conv, user, m.Receipt))
	}
	if m.Wait > 0 {
		g.receipts.schedule(g, conv, user, m.Wait)
	}
}

// handleConversationsList is conversations:list {limit?, cursor?}.
func (g *Gateway) handleConversationsList(ctx context.Context, cl *client, ev *socketio.Event) (map[string]any, error) {
	if g.deps.Reads == nil {
		return nil, errNoReads
	}
	var req struct {
		Limit  int    `json:"limit"`
		Cursor string `json:"cursor"`
	}
	if len(ev.Args) > 0 {
		if err := decodeArg(ev, &req); err != nil {
			return nil, err
		}
	}
	page, err := g.deps.Reads.Conversations(ctx, cl.userID, req.Limit, req.Cursor)
	if err != nil {
		return nil, err
	}
	return page.Reply(), nil
}

// syncReads is the reads field of a messages:sync ack: every member's read
// position (0 when it never read).
func (g *Gateway) syncReads(ctx context.Context, conv string, members []string) (map[string]int64, error) {
	reads, err := g.deps.Reads.Reads(ctx, conv)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(members))
	for _, u := range members {
		out[u] = reads[u]
	}
	return out, nil
}
