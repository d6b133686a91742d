package gateway

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/chatstate/chatstate/fanout"
	"github.com/chatstate/chatstate/internal/keys"
	"github.com/chatstate/chatstate/socketio"
)

// hub is this node's view of who is connected here. It subscribes, through
// the fan-out broker, to a user's channel while it holds at least one
// socket of that user, and to the channel of each of the user's
// conversations (convsub.go), so a message costs work only on the nodes
// that hold its recipients, once per node (unlike an adapter that sends
// every broadcast to every node).
type hub struct {
	b   fanout.Broker
	log *slog.Logger
	m   *metrics

	mu    sync.Mutex
	users map[string]*userConns

	done    <-chan struct{}       // closed when the broker's loop ends (after start)
	onResub func(context.Context) // called after subscriptions were restored
	// onControl runs a control envelope (controlPrefix) of a user's
	// channel; false means it was malformed.
	onControl func(userID, payload string) bool
	// listConvs lists a connecting user's conversations.
	listConvs func(ctx context.Context, userID string) ([]string, error)

	// convSubMu serialises the conversation subscriptions of this node
	// (the broker's calls for one conversation must not overlap); convMu
	// guards convs, catching and every userConns.convs. Order: a user's
	// subMu, convSubMu, convMu, mu, a user's mu.
	convSubMu sync.Mutex
	convMu    sync.Mutex
	convs     map[string]convEntry
	catching  map[userConv]*catchUpState // the joins being caught up
}

type userConns struct {
	refs int // pins the entry in hub.users while adds/removes are in flight

	subMu      sync.Mutex // serialises SUBSCRIBE/UNSUBSCRIBE of this user
	subscribed bool

	mu    sync.RWMutex
	conns []*socketio.Conn // a slice, not a set: a user has a few devices, and an idle one costs 8 bytes here

	// convs are the conversations subscribed for the user, with its
	// delivery state in each; under hub.convMu. Values, not pointers: a
	// user may be in hundreds of conversations.
	convs map[string]convState
}

// newHub returns a hub on a Redis broker of client.
func newHub(client fanout.Client, k keys.Keys, log *slog.Logger, m *metrics) *hub {
	return newHubOn(fanout.NewRedis(client, fanout.RedisConfig{KeyPrefix: k.Prefix(), Logger: log}), log, m)
}

func newHubOn(b fanout.Broker, log *slog.Logger, m *metrics) *hub {
	return &hub{b: b, log: log, m: m, users: make(map[string]*userConns), convs: make(map[string]convEntry),
		catching: make(map[userConv]*catchUpState)}
}

// start starts the broker until ctx ends: after a lost subscriber is
// restored, onResub lets the gateway tell clients to resync.
func (h *hub) start(ctx context.Context) error {
	err := h.b.Start(ctx, fanout.Handler{
		Message:      h.onMessage,
		Conversation: h.onConversation,
		Lost:         func(error) { h.m.pubsubReconnects.Inc() },
		Restored: func(ctx context.Context) {
			if h.onResub != nil {
				h.onResub(ctx)
			}
		},
	})
	if err == nil {
		h.done = h.b.Done()
	}
	return err
}

// live reports whether the subscriber is connected, and a count of its
// losses: a send acknowledged while live delivery to this node is broken
// would let the sender's device advance its highest seq past messages it
// never got, and the sync after `resync` (from that seq) would skip them.
// The gateway refuses sends (unavailable) unless live held, unchanged,
// across the whole send.
func (h *hub) live() (losses uint64, up bool) { return h.b.Live() }

// close closes the broker and waits for its loop to end (its context
// should be cancelled first, or the loop may be in a backoff).
func (h *hub) close() { h.b.Close() }

// add registers c as a socket of userID, subscribing to the user's channel
// and the channels of the user's conversations before it returns, so no
// message published afterwards is missed.
func (h *hub) add(ctx context.Context, userID string, c *socketio.Conn) error {
	h.mu.Lock()
	e := h.users[userID]
	if e == nil {
		e = &userConns{}
		h.users[userID] = e
	}
	e.refs++
	h.mu.Unlock()

	e.mu.Lock()
	e.conns = append(e.conns, c)
	e.mu.Unlock()

	e.subMu.Lock()
	defer e.subMu.Unlock()
	if e.subscribed {
		return nil
	}
	if err := h.b.SubscribeUser(ctx, userID); err != nil {
		e.removeConn(c)
		h.release(userID, e)
		return err
	}
	var convs []string
	var err error
	if h.listConvs != nil {
		convs, err = h.listConvs(ctx, userID)
	}
	if err == nil {
		err = h.joinConvs(ctx, userID, e, convs, false)
	}
	if err != nil {
		if uerr := h.b.UnsubscribeUser(context.WithoutCancel(ctx), userID); uerr != nil {
			h.log.Warn("unsubscribe failed", "user", userID, "err", uerr)
		}
		e.removeConn(c)
		h.release(userID, e)
		return err
	}
	e.subscribed = true
	return nil
}

// remove unregisters c and drops the subscription with the user's last socket.
func (h *hub) remove(ctx context.Context, userID string, c *socketio.Conn) {
	h.mu.Lock()
	e := h.users[userID]
	h.mu.Unlock()
	if e == nil {
		return
	}
	had, empty := e.removeConn(c)
	if !had {
		return
	}
	if empty {
		e.subMu.Lock()
		e.mu.RLock()
		stillEmpty := len(e.conns) == 0
		e.mu.RUnlock()
		if stillEmpty && e.subscribed {
			h.leaveConvs(ctx, userID, e)
			if err := h.b.UnsubscribeUser(ctx, userID); err != nil {
				// The subscription is harmless beyond wasted traffic; the next
				// reconnect of the subscriber drops it.
				h.log.Warn("unsubscribe failed", "user", userID, "err", err)
			}
			e.subscribed = false
		}
		e.subMu.Unlock()
	}
	h.release(userID, e)
}

// removeConn drops c from the user's sockets; it reports whether c was
// there and whether none is left.
func (e *userConns) removeConn(c *socketio.Conn) (had, empty bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if i := slices.Index(e.conns, c); i >= 0 {
		e.conns = slices.Delete(e.conns, i, i+1)
		had = true
	}
	if len(e.conns) == 0 {
		e.conns = nil
	}
	return had, e.conns == nil
}

func (h *hub) release(userID string, e *userConns) {
	h.mu.Lock()
	e.refs--
	if e.refs == 0 && h.users[userID] == e {
		delete(h.users, userID)
	}
	h.mu.Unlock()
}

// notHeld returns the users of ids, but except, with no socket here: a
// user with one is connected, whatever any presence lookup would say.
func (h *hub) notHeld(ids []string, except string) []string {
	entries := make([]*userConns, len(ids))
	h.mu.Lock()
	for i, u := range ids {
		entries[i] = h.users[u]
	}
	h.mu.Unlock()
	out := make([]string, 0, len(ids))
	for i, u := range ids {
		// Outside h.mu: never hold it while taking an entry's lock.
		if u != except && (entries[i] == nil || !entries[i].held()) {
			out = append(out, u)
		}
	}
	return out
}

// conns returns the local sockets of userID.
func (h *hub) conns(userID string) []*socketio.Conn {
	h.mu.Lock()
	e := h.users[userID]
	h.mu.Unlock()
	if e == nil {
		return nil
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	return slices.Clone(e.conns)
}

// each calls fn for every local socket.
func (h *hub) each(fn func(userID string, c *socketio.Conn)) {
	h.mu.Lock()
	type pair struct {
		u string
		e *userConns
	}
	all := make([]pair, 0, len(h.users))
	for u, e := range h.users {
		all = append(all, pair{u, e})
	}
	h.mu.Unlock()
	for _, p := range all {
		p.e.mu.RLock()
		conns := slices.Clone(p.e.conns)
		p.e.mu.RUnlock()
		for _, c := range conns {
			fn(p.u, c)
		}
	}
}

// onMessage delivers one publication to the local sockets of its user.
// Envelope: "<excluded socket id>\x00<socket.io packet>", or a control
// envelope (controlPrefix). It runs on the subscriber's reader for every
// delivery, so it allocates only the Frame.
func (h *hub) onMessage(userID, message string) {
	if payload, ok := strings.CutPrefix(message, controlPrefix); ok {
		if h.onControl == nil || !h.onControl(userID, payload) {
			h.m.badEnvelopes.Inc()
		}
		return
	}
	exclude, packet, ok := strings.Cut(message, "\x00")
	if !ok || packet == "" {
		h.m.badEnvelopes.Inc()
		return
	}
	h.deliver(userID, exclude, stringFrame(packet))
}

// held reports whether the user has a socket here.
func (e *userConns) held() bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return len(e.conns) > 0
}
