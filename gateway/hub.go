package gateway

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/chatstate/chatstate/internal/keys"
	"github.com/chatstate/chatstate/socketio"
	"github.com/redis/rueidis"
)

// hub is this node's view of who is connected here, and its Redis Pub/Sub
// subscriptions. A node subscribes to a user's channel while it holds at
// least one socket of that user, so a message costs work only on the nodes
// that hold its recipients (unlike an adapter that sends every broadcast to
// every node).
type hub struct {
	client rueidis.Client
	keys   keys.Keys
	log    *slog.Logger
	m      *metrics

	mu    sync.Mutex
	users map[string]*userConns

	subMu   sync.Mutex // guards sub and serialises (re)connects of the subscriber
	sub     rueidis.DedicatedClient
	subAddr string // the Sentinel master sub was dedicated from; "" in other modes
	cancel  func()
	closed  bool
	done    chan struct{}         // closed when the loop of start ends
	onResub func(context.Context) // called after subscriptions were restored
	// onControl runs a control envelope (controlPrefix) of a user's
	// channel; false means it was malformed.
	onControl func(userID, payload string) bool

	// up is false while the subscriber is lost and not yet restored;
	// losses counts the losses. See live.
	up     atomic.Bool
	losses atomic.Uint64

	// resyncDue is set while a restored subscriber has not yet told the
	// sockets to resync (onResub). The first publication it receives emits
	// the resync first, under resyncMu: a socket given a live message with
	// a higher seq before its resync would sync from that seq and skip
	// what was published during the gap.
	resyncMu  sync.Mutex
	resyncDue atomic.Bool
	subGen    atomic.Uint64 // counts connects; only the newest subscriber emits resync
	runCtx    context.Context
}

type userConns struct {
	refs int // pins the entry in hub.users while adds/removes are in flight

	subMu      sync.Mutex // serialises SUBSCRIBE/UNSUBSCRIBE of this user
	subscribed bool

	mu    sync.RWMutex
	conns []*socketio.Conn // a slice, not a set: a user has a few devices, and an idle one costs 8 bytes here
}

func newHub(client rueidis.Client, k keys.Keys, log *slog.Logger, m *metrics) *hub {
	return &hub{client: client, keys: k, log: log, m: m, users: make(map[string]*userConns)}
}

// channelUser extracts the user id from a user channel name.
func (h *hub) channelUser(ch string) (string, bool) {
	// user:{u:<id>} under the prefix
	i := strings.Index(ch, "{u:")
	if i < 0 || !strings.HasSuffix(ch, "}") {
		return "", false
	}
	return ch[i+3 : len(ch)-1], true
}

// start opens the subscriber connection and keeps it open until ctx ends:
// after a Redis reconnect every current subscription is restored, the gap is
// logged and counted, and onResub lets the gateway tell clients to resync.
func (h *hub) start(ctx context.Context) error {
	h.runCtx = ctx
	wait, err := h.connect(ctx)
	if err != nil {
		return err
	}
	done := make(chan struct{})
	h.subMu.Lock()
	h.done = done
	h.subMu.Unlock()
	h.up.Store(true)
	go func() {
		defer close(done)
		// A Sentinel client moves to a new master on +switch-master but leaves
		// dedicated connections where they are, and the old master, still up
		// after a requested failover, keeps this subscriber until Sentinel
		// demotes it (about 10 s) while publications go to the new one.
		moved := time.NewTicker(masterCheckInterval)
		defer moved.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-moved.C:
				h.subMu.Lock()
				if addr := h.masterAddr(); h.subAddr != "" && addr != "" && addr != h.subAddr && h.cancel != nil {
					h.log.Warn("redis master moved; moving pub/sub to it", "from", h.subAddr, "to", addr)
					h.cancel() // wait fires, and the loop below reconnects
				}
				h.subMu.Unlock()
			case err := <-wait:
				h.subMu.Lock()
				closed := h.closed
				h.subMu.Unlock()
				if closed || ctx.Err() != nil {
					return
				}
				h.up.Store(false)
				h.losses.Add(1)
				h.m.pubsubReconnects.Inc()
				h.log.Warn("redis pub/sub connection lost; messages published until it is restored are not delivered live (clients resync by seq)", "err", err)
				backoff := 100 * time.Millisecond
				for {
					h.resyncDue.Store(true)
					if wait, err = h.connect(ctx); err == nil {
						break
					}
					if errors.Is(err, errHubClosed) {
						return
					}
					h.log.Warn("redis pub/sub reconnect failed", "err", err, "retry_in", backoff)
					select {
					case <-ctx.Done():
						return
					case <-time.After(backoff):
					}
					// Sends are refused until the subscriber is back
					// (see live): retry often.
					backoff = min(backoff*2, time.Second)
				}
				h.log.Info("redis pub/sub restored", "users", h.count())
				h.resync()
				// Only now: each socket gets its resync before the ack of
				// any send accepted from here on, so the sync it triggers
				// starts below that send's seq.
				h.up.Store(true)
			}
		}
	}()
	return nil
}

// connect dedicates a connection, installs the message hook and subscribes
// to every user currently held here, within subscribeTimeout so a hung
// Redis fails the attempt and the reconnect loop tries again.
func (h *hub) connect(ctx context.Context) (<-chan error, error) {
	ctx, stop := context.WithTimeout(ctx, subscribeTimeout)
	defer stop()
	// The address is read before Dedicate: a switch in between then shows
	// as a move on the next check instead of going unnoticed.
	addr := h.masterAddr()
	gen := h.subGen.Add(1)
	sub, cancel := h.client.Dedicate()
	wait := sub.SetPubSubHooks(rueidis.PubSubHooks{OnMessage: func(m rueidis.PubSubMessage) {
		if h.resyncDue.Load() && h.subGen.Load() == gen {
			h.resync()
		}
		h.onMessage(m)
	}})
	h.subMu.Lock()
	if h.closed {
		// close ran meanwhile: nothing would cancel this connection.
		h.subMu.Unlock()
		cancel()
		return nil, errHubClosed
	}
	select {
	case err := <-wait:
		// The connection could not be dialled. With no user to subscribe
		// nothing else would fail, and the caller would spin on wait.
		h.subMu.Unlock()
		cancel()
		if err == nil {
			err = errors.New("pub/sub connection closed")
		}
		return nil, err
	default:
	}
	if h.cancel != nil {
		h.cancel()
	}
	h.sub, h.cancel = sub, cancel
	h.subAddr = addr
	h.subMu.Unlock()

	var channels []string
	h.mu.Lock()
	for u, e := range h.users {
		e.subMu.Lock()
		if e.subscribed {
			channels = append(channels, h.keys.UserChannel(u))
		}
		e.subMu.Unlock()
	}
	h.mu.Unlock()
	for len(channels) > 0 {
		n := min(len(channels), 1000)
		if err := sub.Do(ctx, sub.B().Subscribe().Channel(channels[:n]...).Build()).Error(); err != nil {
			return nil, err
		}
		channels = channels[n:]
	}
	return wait, nil
}

// resync calls onResub once per restored subscriber, from the reconnect
// loop or from the first publication the subscriber delivers, whichever
// comes first; either returns only once the resync frames are queued.
func (h *hub) resync() {
	h.resyncMu.Lock()
	defer h.resyncMu.Unlock()
	if h.resyncDue.Load() {
		if h.onResub != nil {
			h.onResub(h.runCtx)
		}
		h.resyncDue.Store(false)
	}
}

// masterCheckInterval is how often the hub compares its subscriber's master
// with the Sentinel client's.
const masterCheckInterval = time.Second

// masterAddr is the master a Sentinel client currently sends to, "" for
// other clients.
func (h *hub) masterAddr() string {
	if h.client.Mode() != rueidis.ClientModeSentinel {
		return ""
	}
	for addr := range h.client.Nodes() {
		return addr
	}
	return ""
}

// live reports whether the subscriber is connected, and a count of its
// losses: a send acknowledged while live delivery to this node is broken
// would let the sender's device advance its highest seq past messages it
// never got, and the sync after `resync` (from that seq) would skip them.
// The gateway refuses sends (unavailable) unless live held, unchanged,
// across the whole send.
func (h *hub) live() (losses uint64, up bool) {
	return h.losses.Load(), h.up.Load()
}

// subscribeTimeout bounds one (re)subscription of every local user.
const subscribeTimeout = 10 * time.Second

// close closes the subscriber and waits for the loop of start to end (its
// context should be cancelled first, or the loop may be in a backoff).
func (h *hub) close() {
	h.subMu.Lock()
	h.closed = true
	if h.cancel != nil {
		h.cancel()
	}
	done := h.done
	h.subMu.Unlock()
	if done != nil {
		<-done
	}
}

var errHubClosed = errors.New("gateway: subscriber closed")

func (h *hub) subscriber() rueidis.DedicatedClient {
	h.subMu.Lock()
	defer h.subMu.Unlock()
	return h.sub
}

// add registers c as a socket of userID, subscribing to the user's channel
// before it returns so no message published afterwards is missed.
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
	sub := h.subscriber()
	if err := sub.Do(ctx, sub.B().Subscribe().Channel(h.keys.UserChannel(userID)).Build()).Error(); err != nil {
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
			sub := h.subscriber()
			if err := sub.Do(ctx, sub.B().Unsubscribe().Channel(h.keys.UserChannel(userID)).Build()).Error(); err != nil {
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

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.users)
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
func (h *hub) onMessage(m rueidis.PubSubMessage) {
	userID, ok := h.channelUser(m.Channel)
	if !ok {
		return
	}
	if payload, ok := strings.CutPrefix(m.Message, controlPrefix); ok {
		if h.onControl == nil || !h.onControl(userID, payload) {
			h.m.badEnvelopes.Inc()
		}
		return
	}
	exclude, packet, ok := strings.Cut(m.Message, "\x00")
	if !ok || packet == "" {
		h.m.badEnvelopes.Inc()
		return
	}
	h.mu.Lock()
	e := h.users[userID]
	h.mu.Unlock()
	if e == nil {
		return
	}
	// Copy the recipients out of the lock into a stack array: a user
	// rarely has more than a few devices.
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
	if len(conns) == 0 {
		return
	}
	// The frame shares the publication's bytes instead of copying them:
	// a string is never modified, and RawFrame only reads its packet.
	f := socketio.RawFrame(unsafe.Slice(unsafe.StringData(packet), len(packet)))
	for _, c := range conns {
		if err := c.Send(f); err != nil {
			h.m.dropped.WithLabelValues("send_queue").Inc()
			continue
		}
		h.m.delivered.Inc()
	}
}

// held reports whether the user has a socket here.
func (e *userConns) held() bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return len(e.conns) > 0
}
