package gateway

import (
	"context"
	"maps"
	"slices"
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
	// id is the conversation id every local member's convs map is keyed
	// with: one copy of it per node, not one per member.
	id         string
	refs       int32 // the local members it is subscribed for
	subscribed bool
}

// convState is a local member's delivery state in one conversation.
type convState struct {
	// liveFrom: every publication of the conversation from this seq on
	// was delivered to the user's sockets here (or is held by a catch-up);
	// 0 until the first delivery.
	liveFrom int64
	// last is the highest seq delivered: a publication can reach this
	// node after a catch-up read already returned it (the read and the
	// subscriber are different connections), and is dropped then.
	last int64
}

// userConv names a user's membership in a conversation.
type userConv struct{ user, conv string }

// catchUpState holds a joining user's live publications while its
// catch-up reads what it missed.
type catchUpState struct{ held []livePub }

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
	f := stringFrame(packet)
	h.convMu.Lock()
	defer h.convMu.Unlock()
	if _, ok := h.convs[convID]; !ok {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for len(recipients) > 0 {
		var u string
		u, recipients, _ = strings.Cut(recipients, ",")
		ue := h.users[u]
		if ue == nil {
			continue
		}
		st, ok := ue.convs[convID]
		if !ok {
			continue
		}
		if len(h.catching) > 0 {
			if c := h.catching[userConv{u, convID}]; c != nil {
				c.held = append(c.held, livePub{seq: seq, exclude: exclude, frame: f})
				continue
			}
		}
		if seq <= st.last {
			continue
		}
		if st.liveFrom == 0 {
			st.liveFrom = seq
		}
		st.last = seq
		ue.convs[convID] = st
		h.deliverTo(ue, exclude, f)
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
		if _, ok := ue.convs[c]; !ok {
			if ue.convs == nil {
				ue.convs = make(map[string]convState, len(convIDs))
			}
			e, ok := h.convs[c]
			if ok {
				c = e.id
			} else {
				e.id = c
			}
			ue.convs[c] = convState{}
			e.refs++
			h.convs[c] = e
			added = append(added, c)
			if !e.subscribed {
				need = append(need, c)
			}
		}
		if catching && h.catching[userConv{userID, c}] == nil {
			h.catching[userConv{userID, c}] = &catchUpState{}
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
		if e, ok := h.convs[c]; ok {
			e.subscribed = true
			h.convs[c] = e
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
	drop := h.dropUserLocked(userID, ue, slices.Collect(maps.Keys(ue.convs)))
	ue.convs = nil
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
// with no local member (no longer in h.convs). It runs under convSubMu and
// convMu.
func (h *hub) dropUserLocked(userID string, ue *userConns, convIDs []string) []string {
	var drop []string
	for _, c := range convIDs {
		if _, ok := ue.convs[c]; !ok {
			continue
		}
		delete(ue.convs, c)
		delete(h.catching, userConv{userID, c})
		e := h.convs[c]
		if e.refs--; e.refs <= 0 {
			delete(h.convs, c)
			drop = append(drop, c)
		} else {
			h.convs[c] = e
		}
	}
	return drop
}

// ensureConv makes sure this node receives convID's messages for userID,
// a member with a socket here: a send subscribes before its message is
// published, so its echo (and every later message) reaches this node even
// when the join's control envelope has not arrived yet.
func (h *hub) ensureConv(ctx context.Context, userID, convID string) error {
	ue := h.entry(userID)
	if ue == nil {
		return nil
	}
	h.convMu.Lock()
	_, member := ue.convs[convID]
	ok := member && h.convs[convID].subscribed
	h.convMu.Unlock()
	if ok {
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
	// Subscribed before the read: everything it does not return arrives
	// live. A subscription fails only for a user new to the conversation
	// here, whom joinConvs removes again: nothing was held then.
	var pubs []livePub
	err := h.joinConvs(ctx, userID, ue, []string{convID}, true)
	if err == nil {
		pubs, err = fetch(ctx, convID, from)
	}
	h.convMu.Lock()
	defer h.convMu.Unlock()
	key := userConv{userID, convID}
	held := h.catching[key]
	delete(h.catching, key)
	st, ok := ue.convs[convID]
	if !ok || held == nil {
		if err != nil {
			h.log.Warn("join: subscribe failed", "user", userID, "conversation", convID, "err", err)
		}
		return err == nil
	}
	live := st.liveFrom
	if live == 0 && len(held.held) > 0 {
		// What was held is the live stream: it carries each publication's
		// excluded socket (a sender here gets no copy of its own message,
		// and its echo), so it wins over the read where they overlap.
		live = held.held[0].seq
	}
	if err == nil {
		for _, p := range pubs {
			// Below the first live delivery, or above the last one
			// before it, and never twice. A send from this node may have
			// started live delivery before this join arrived: the gap
			// below it then comes after it.
			if p.seq <= from || (live != 0 && p.seq >= live) {
				continue
			}
			h.deliverTo(ue, "", p.frame)
			st.last = max(st.last, p.seq)
		}
		if live == 0 || from+1 < live {
			st.liveFrom = from + 1
		}
	} else {
		h.log.Warn("join: catch-up failed", "user", userID, "conversation", convID, "err", err)
	}
	for _, p := range held.held {
		if p.seq > st.last {
			h.deliverTo(ue, p.exclude, p.frame)
			st.last = p.seq
			if st.liveFrom == 0 {
				st.liveFrom = p.seq
			}
		}
	}
	ue.convs[convID] = st
	return err == nil
}

// deliver queues f on userID's local sockets except exclude, whose echo
// it signals instead (its sender gets the ack).
func (h *hub) deliver(userID, exclude string, f *socketio.Frame) {
	if e := h.entry(userID); e != nil {
		h.deliverTo(e, exclude, f)
	}
}

func (h *hub) deliverTo(e *userConns, exclude string, f *socketio.Frame) {
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

// stringFrame is a frame sharing a publication's bytes instead of copying
// them: a string is never modified, and RawFrame only reads its packet.
func stringFrame(packet string) *socketio.Frame {
	return socketio.RawFrame(unsafe.Slice(unsafe.StringData(packet), len(packet)))
}

// entry returns the user's entry, nil without sockets here.
func (h *hub) entry(userID string) *userConns {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.users[userID]
}
