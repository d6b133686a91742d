package gateway

import (
	"context"
	"strconv"
	"strings"
	"unsafe"

	"github.com/chatstate/chatstate/socketio"
)

// Conversation channels (docs/delivery.md, "Fan-out"). A node subscribes
// to a conversation's channel while it holds a socket of a member, and the
// commit script publishes each message there once, with its recipients:
// "<seq>\x00<excluded socket id>\x00<recipient>,<recipient>...\x00<packet>".
// A message costs one publication per message and one delivery per node
// holding a recipient, whatever the size of the conversation, and a member
// removed by a lower seq is not among the recipients.
//
// A node learns a user's conversations when the user's first socket
// connects (subscribed before the client can sync, as the user channel
// is) and when the user joins one (a join control on the user's channel,
// or the user's own send). What a joining user's sockets missed between
// the join and the subscription is caught up from the message flow, with
// the user's live publications held back meanwhile so each seq is
// delivered once and in order.

// convEntry is one subscribed (or subscribing) conversation of this node.
type convEntry struct {
	users      map[string]*convMember // the local members it is subscribed for
	subscribed bool
}

// convMember is a local member's delivery state in one conversation.
type convMember struct {
	// liveFrom: every publication of the conversation from this seq on
	// was delivered to the user's sockets here (or is held in joining);
	// 0 until the first delivery.
	liveFrom int64
	// last is the highest seq delivered: a publication can reach this
	// node after a catch-up read already returned it (the read and the
	// subscriber are different connections), and is dropped then.
	last int64
	// catching: a catch-up runs; live publications wait in joining.
	catching bool
	joining  []livePub
}

type livePub struct {
	seq     int64
	exclude string
	frame   *socketio.Frame
}

// convFetch reads a conversation's settled messages above afterSeq as
// message:new frames, in seq order, up to the watermark (every page).
type convFetch func(ctx context.Context, convID string, afterSeq int64) ([]livePub, error)

// onConversation delivers one publication of a conversation's channel to
// the local sockets of its recipients. It runs on the subscriber's reader.
func (h *hub) onConversation(convID, payload string) {
	seqStr, rest, ok1 := strings.Cut(payload, "\x00")
	exclude, rest, ok2 := strings.Cut(rest, "\x00")
	recipients, packet, ok3 := strings.Cut(rest, "\x00")
	seq, err := strconv.ParseInt(seqStr, 10, 64)
	if !ok1 || !ok2 || !ok3 || err != nil || packet == "" {
		h.m.badEnvelopes.Inc()
		return
	}
	// The frame shares the publication's bytes instead of copying them:
	// a string is never modified, and RawFrame only reads its packet.
	f := socketio.RawFrame(unsafe.Slice(unsafe.StringData(packet), len(packet)))
	h.convMu.Lock()
	defer h.convMu.Unlock()
	e := h.convs[convID]
	if e == nil {
		return
	}
	for len(recipients) > 0 {
		var u string
		u, recipients, _ = strings.Cut(recipients, ",")
		m := e.users[u]
		if m == nil {
			continue
		}
		if m.catching {
			m.joining = append(m.joining, livePub{seq: seq, exclude: exclude, frame: f})
			continue
		}
		if seq <= m.last {
			continue
		}
		if m.liveFrom == 0 {
			m.liveFrom = seq
		}
		m.last = seq
		h.deliver(u, exclude, f)
	}
}

// joinConvs subscribes this node to convIDs for userID (already subscribed
// ones only gain the user). With catching, the user's live publications
// of them are held from before the subscription on (catchUp). The caller
// holds the user's subMu.
func (h *hub) joinConvs(ctx context.Context, userID string, ue *userConns, convIDs []string, catching bool) error {
	if len(convIDs) == 0 {
		return nil
	}
	h.convSubMu.Lock()
	defer h.convSubMu.Unlock()
	var added, need []string
	h.convMu.Lock()
	for _, c := range convIDs {
		e := h.convs[c]
		if e == nil {
			e = &convEntry{users: make(map[string]*convMember, 1)}
			h.convs[c] = e
		}
		m := e.users[userID]
		if m == nil {
			m = &convMember{}
			e.users[userID] = m
			if ue.convs == nil {
				ue.convs = make(map[string]struct{}, len(convIDs))
			}
			ue.convs[c] = struct{}{}
			added = append(added, c)
		}
		if catching && !m.catching {
			m.catching, m.joining = true, nil
		}
		if !e.subscribed {
			need = append(need, c)
		}
	}
	h.convMu.Unlock()
	if len(need) == 0 {
		return nil
	}
	if err := h.b.SubscribeConversations(ctx, need); err != nil {
		h.convMu.Lock()
		drop := h.dropUserLocked(userID, ue, added)
		h.convMu.Unlock()
		// Some may have been subscribed before the error.
		if len(drop) > 0 {
			_ = h.b.UnsubscribeConversations(context.WithoutCancel(ctx), drop)
		}
		return err
	}
	h.convMu.Lock()
	for _, c := range need {
		if e := h.convs[c]; e != nil {
			e.subscribed = true
		}
	}
	h.convMu.Unlock()
	return nil
}

// leaveConvs drops userID from every conversation it holds here and
// unsubscribes those no local member needs. The caller holds the user's
// subMu.
func (h *hub) leaveConvs(ctx context.Context, userID string, ue *userConns) {
	h.convSubMu.Lock()
	defer h.convSubMu.Unlock()
	h.convMu.Lock()
	convs := make([]string, 0, len(ue.convs))
	for c := range ue.convs {
		convs = append(convs, c)
	}
	drop := h.dropUserLocked(userID, ue, convs)
	h.convMu.Unlock()
	if len(drop) == 0 {
		return
	}
	if err := h.b.UnsubscribeConversations(ctx, drop); err != nil {
		// As for a user channel: harmless until the next reconnect.
		h.log.Warn("unsubscribe failed", "conversations", len(drop), "err", err)
	}
}

// dropUserLocked removes userID from convIDs and returns the ones left
// with no local member (no longer in h.convs) that were subscribed or
// subscribing. It runs under convSubMu and convMu.
func (h *hub) dropUserLocked(userID string, ue *userConns, convIDs []string) []string {
	var drop []string
	for _, c := range convIDs {
		delete(ue.convs, c)
		e := h.convs[c]
		if e == nil {
			continue
		}
		delete(e.users, userID)
		if len(e.users) == 0 {
			delete(h.convs, c)
			drop = append(drop, c)
		}
	}
	return drop
}

// ensureConv makes sure this node receives convID's messages for userID,
// a member with a socket here: a send subscribes before its message is
// published, so its echo (and every later message) reaches this node even
// when the join's control envelope has not arrived yet.
func (h *hub) ensureConv(ctx context.Context, userID, convID string) error {
	h.convMu.Lock()
	e := h.convs[convID]
	ok := e != nil && e.subscribed && e.users[userID] != nil
	h.convMu.Unlock()
	if ok {
		return nil
	}
	ue := h.entry(userID)
	if ue == nil {
		return nil
	}
	ue.subMu.Lock()
	defer ue.subMu.Unlock()
	if !ue.subscribed {
		return nil // its last socket is leaving
	}
	return h.joinConvs(ctx, userID, ue, []string{convID}, false)
}

// catchUp runs a join of userID to convID at seq from (messages above it
// may be the user's): subscribe, then deliver to the user's sockets here
// what was published after from and before their live delivery began,
// holding their live publications until then. It reports false when the
// gap could not be read (the caller asks the sockets to resync).
func (h *hub) catchUp(ctx context.Context, userID, convID string, from int64, fetch convFetch) bool {
	ue := h.entry(userID)
	if ue == nil {
		return true
	}
	ue.subMu.Lock()
	defer ue.subMu.Unlock()
	if !ue.subscribed {
		return true
	}
	if err := h.joinConvs(ctx, userID, ue, []string{convID}, true); err != nil {
		h.log.Warn("join: subscribe failed", "user", userID, "conversation", convID, "err", err)
		return false
	}
	h.convMu.Lock()
	m := h.convs[convID].users[userID] // present: joinConvs succeeded under subMu
	h.convMu.Unlock()
	// Subscribed before this read: everything it does not return arrives live.
	pubs, err := fetch(ctx, convID, from)
	h.convMu.Lock()
	defer h.convMu.Unlock()
	live := m.liveFrom
	if err == nil {
		for _, p := range pubs {
			// Below the first live delivery, or above the last one
			// before it, and never twice. A send from this node may have
			// started live delivery before this join arrived: the gap
			// below it then comes after it.
			if p.seq <= from || (live != 0 && p.seq >= live) || (live == 0 && p.seq <= m.last) {
				continue
			}
			h.deliver(userID, "", p.frame)
			m.last = max(m.last, p.seq)
		}
		if live == 0 || from+1 < live {
			m.liveFrom = from + 1
		}
	} else {
		h.log.Warn("join: catch-up read failed", "user", userID, "conversation", convID, "err", err)
	}
	for _, p := range m.joining {
		if p.seq > m.last {
			h.deliver(userID, p.exclude, p.frame)
			m.last = p.seq
			if m.liveFrom == 0 {
				m.liveFrom = p.seq
			}
		}
	}
	m.catching, m.joining = false, nil
	return err == nil
}

// deliver queues f on userID's local sockets except exclude, whose echo
// it signals instead (its sender gets the ack).
func (h *hub) deliver(userID, exclude string, f *socketio.Frame) {
	e := h.entry(userID)
	if e == nil {
		return
	}
	var arr [4]*socketio.Conn
	conns := arr[:0]
	e.mu.RLock()
	for _, c := range e.conns {
		if c.ID() != exclude {
			conns = append(conns, c)
		} else if cl, ok := c.Data().(*client); ok {
			select {
			case cl.echo <- struct{}{}:
			default:
			}
		}
	}
	e.mu.RUnlock()
	for _, c := range conns {
		if err := c.Send(f); err != nil {
			h.m.dropped.WithLabelValues("send_queue").Inc()
			continue
		}
		h.m.delivered.Inc()
	}
}

// entry returns the user's entry, nil without sockets here.
func (h *hub) entry(userID string) *userConns {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.users[userID]
}
