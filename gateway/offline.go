package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Retry bounds of a failed offline. Past offlineGiveUp the device entry has
// expired by itself (presence's DeviceTTL, 5 minutes by default) and the
// sweep reports it.
const (
	offlineRetryMin = 100 * time.Millisecond
	offlineRetryMax = 5 * time.Second
	offlineGiveUp   = 10 * time.Minute
	// maxPendingOffline bounds the queue through a long outage; beyond it a
	// disconnected device is left to expire with its TTL.
	maxPendingOffline = 100_000
)

// pendingOffline holds the sockets whose device could not be taken offline
// (Redis down, hung or failing over). Without a retry such a user looks
// online, and gets no pushes, for the device TTL although it left. A
// refused connect's device goes through it too (refused: its socket record
// goes as well, and as its coming online was never announced, neither is
// its going).
type pendingOffline struct {
	mu    sync.Mutex
	socks map[string]offlineEntry // by socket id
	wake  chan struct{}
	gauge prometheus.Gauge
}

type offlineEntry struct {
	cl      *client
	refused bool
	since   time.Time
}

func newPendingOffline(gauge prometheus.Gauge) *pendingOffline {
	return &pendingOffline{socks: map[string]offlineEntry{}, wake: make(chan struct{}, 1), gauge: gauge}
}

// add queues cl's socket; false when the queue is full.
func (p *pendingOffline) add(cl *client, refused bool) bool {
	p.mu.Lock()
	if len(p.socks) >= maxPendingOffline {
		p.mu.Unlock()
		return false
	}
	p.socks[cl.conn.ID()] = offlineEntry{cl: cl, refused: refused, since: time.Now()}
	p.gauge.Set(float64(len(p.socks)))
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return true
}

func (p *pendingOffline) snapshot() []offlineEntry {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]offlineEntry, 0, len(p.socks))
	for _, e := range p.socks {
		out = append(out, e)
	}
	return out
}

func (p *pendingOffline) done(socketID string) {
	p.mu.Lock()
	delete(p.socks, socketID)
	p.gauge.Set(float64(len(p.socks)))
	p.mu.Unlock()
}

// retryOffline takes queued devices offline until ctx ends: at once when
// one is queued, then with backoff while Redis keeps failing.
func (g *Gateway) retryOffline(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-g.offline.wake:
		}
		for backoff := offlineRetryMin; g.flushOffline(ctx) > 0; backoff = min(backoff*2, offlineRetryMax) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
		}
	}
}

// flushOffline tries every queued device once and returns how many are
// still queued.
func (g *Gateway) flushOffline(ctx context.Context) int {
	left := 0
	for _, e := range g.offline.snapshot() {
		id := e.cl.conn.ID()
		if time.Since(e.since) > offlineGiveUp {
			g.offline.done(id)
			continue
		}
		callCtx, cancel := context.WithTimeout(ctx, g.cfg.EventTimeout)
		err := g.goOffline(callCtx, e.cl, e.refused)
		cancel()
		if err != nil {
			left++
			continue
		}
		g.offline.done(id)
	}
	return left
}

// goOffline takes a socket's device offline unless a newer socket holds it,
// ends its session unless the device is still connected, and tells friends
// and the store when the user went offline with it. For a refused connect
// it removes the socket record instead of telling anyone (a disconnect
// removed its own before).
func (g *Gateway) goOffline(ctx context.Context, cl *client, refused bool) error {
	change, err := g.deps.State.SetSocketOffline(ctx, cl.userID, cl.deviceID, cl.conn.ID())
	if err != nil {
		return err
	}
	g.endSession(ctx, cl, change)
	if refused {
		if g.deps.Sockets != nil {
			if err := g.deps.Sockets.RemoveSocket(ctx, cl.conn.ID()); err != nil {
				g.log.Debug("refused socket's record not removed; it expires", "socket", cl.conn.ID(), "err", err)
			}
		}
		return nil
	}
	if !change.Changed {
		return nil
	}
	g.publishPresence(ctx, change.After)
	if !change.After.Online && g.deps.LastSeen != nil {
		if err := g.deps.LastSeen.SetLastSeen(ctx, cl.userID, change.After.LastSeen); err != nil {
			g.log.Warn("last seen not persisted", "user", cl.userID, "err", err)
		}
	}
	return nil
}
