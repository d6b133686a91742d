package fanout

// The subscriber behind Redis: its connections (links), the loop of Start
// that is the only goroutine (re)connecting them, and the loss handling
// shared by every connection.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// link is one subscriber connection: the plain one (every channel outside
// Cluster, user channels on a Cluster) or a master's (the shard channels of
// the slots it owns).
type link struct {
	shard bool
	// gen is the connection's number: the hooks of a replaced connection
	// deliver nothing, and its end is not a loss.
	gen atomic.Uint64

	// Guarded by Redis.mu.
	// addr is the master a shard link is dedicated to, or the Sentinel
	// master the plain link was dedicated from ("" in other modes).
	addr   string
	sub    rueidis.DedicatedClient
	cancel func()
	down   bool // lost or never connected: the next repair connects it
}

// event is what a connection reports to the loop.
type event struct {
	l   *link
	gen uint64 // of l's connection that reported it
	err error
	// moved: Redis dropped the shard subscriptions of slot from l.
	moved bool
	slot  uint16
	// refresh: a subscription met MOVED; read the slot owners again.
	refresh bool
}

// deliver is the message hook of l's connection gen.
func (b *Redis) deliver(l *link, gen uint64, ch, msg string) {
	if l.gen.Load() != gen {
		return
	}
	b.deliverMu.Lock()
	defer b.deliverMu.Unlock()
	if !b.broken {
		b.route(b.h, ch, msg)
	}
}

// hooks are the Pub/Sub hooks of l's connection gen.
func (b *Redis) hooks(l *link, gen uint64) rueidis.PubSubHooks {
	h := rueidis.PubSubHooks{OnMessage: func(m rueidis.PubSubMessage) { b.deliver(l, gen, m.Channel, m.Message) }}
	if l.shard {
		h.OnSubscription = func(s rueidis.PubSubSubscription) { b.onShardSubscription(l, gen, s) }
	}
	return h
}

// run is the loop of Start: the only goroutine that (re)connects.
func (b *Redis) run(ctx context.Context) {
	defer close(b.done)
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
		case <-b.closing:
			return
		case <-moved.C:
			b.checkMaster()
			continue
		case <-b.wake:
		}
		lost, refresh, err := b.takeEvents()
		if !lost && refresh {
			lost, err = b.slotsMoved(ctx)
		}
		if !lost {
			continue
		}
		if b.isClosed() || ctx.Err() != nil {
			return
		}
		b.lose(err)
		if !b.recover(ctx) {
			return
		}
	}
}

// checkMaster closes the plain link if the Sentinel client's master is no
// longer the one it was dedicated from: the loop then reconnects it.
func (b *Redis) checkMaster() {
	b.mu.Lock()
	var cancel func()
	if addr := b.masterAddr(); b.plain.addr != "" && addr != "" && addr != b.plain.addr && !b.plain.down {
		b.log.Warn("redis master moved; moving pub/sub to it", "from", b.plain.addr, "to", addr)
		cancel = b.plain.cancel
	}
	b.mu.Unlock()
	if cancel != nil {
		cancel() // its watcher reports the end, a loss
	}
}

// lose starts a loss of the subscriber.
func (b *Redis) lose(err error) {
	b.up.Store(false)
	b.deliverMu.Lock()
	b.broken = true
	b.losses.Add(1)
	if b.h.Lost != nil {
		b.h.Lost(err)
	}
	b.deliverMu.Unlock()
	b.log.Warn("redis pub/sub connection lost; messages published until it is restored are not delivered live (clients resync by seq)", "err", err)
}

// recover repairs until every connection is up with every subscription,
// then ends the loss. False means the broker closed or ctx ended.
func (b *Redis) recover(ctx context.Context) bool {
	backoff := 100 * time.Millisecond
	for {
		err := b.repair(ctx)
		if err == nil {
			// A connection lost while others were repaired is part of
			// this loss.
			var lost bool
			if lost, _, err = b.takeEvents(); !lost {
				break
			}
		}
		if errors.Is(err, errClosed) {
			return false
		}
		b.log.Warn("redis pub/sub reconnect failed", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return false
		case <-b.closing:
			return false
		case <-time.After(backoff):
		}
		b.takeEvents()
		// Sends are refused until the subscriber is back (see Live):
		// retry often.
		backoff = min(backoff*2, time.Second)
	}
	b.log.Info("redis pub/sub restored", "channels", b.count())
	b.restore()
	// Only now: each socket gets its resync before the ack of any send
	// accepted from here on, so the sync it triggers starts below that
	// send's seq.
	b.up.Store(true)
	return true
}

// restore ends a loss: Handler.Restored runs before any later publication
// is delivered, on any connection.
func (b *Redis) restore() {
	b.deliverMu.Lock()
	defer b.deliverMu.Unlock()
	b.broken = false
	if b.h.Restored != nil {
		b.h.Restored(b.runCtx)
	}
}

// kick reports ev to the loop. Connections' readers call it: it must not
// block.
func (b *Redis) kick(ev event) {
	b.mu.Lock()
	b.events = append(b.events, ev)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// takeEvents applies the pending events: lost reports that a current
// connection ended or lost subscriptions (err is the first cause), refresh
// that the slot owners should be read again.
func (b *Redis) takeEvents() (lost, refresh bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	evs := b.events
	b.events = nil
	if b.closed {
		return false, false, nil
	}
	for _, ev := range evs {
		switch {
		case ev.refresh:
			refresh = true
			continue
		case ev.l.gen.Load() != ev.gen || (ev.l != b.plain && b.shards[ev.l.addr] != ev.l):
			continue // a connection replaced or retired on purpose
		case ev.moved:
			b.resub[ev.slot] = struct{}{}
		default:
			ev.l.down = true
		}
		lost = true
		if err == nil {
			err = ev.err
		}
	}
	return lost, refresh, err
}

// repair connects every link that is down and subscribes every channel
// where it belongs, within subscribeTimeout so a hung Redis fails the
// attempt and the loop tries again.
func (b *Redis) repair(ctx context.Context) error {
	ctx, stop := context.WithTimeout(ctx, subscribeTimeout)
	defer stop()
	b.mu.Lock()
	down := b.plain.down
	b.mu.Unlock()
	if down {
		if err := b.connect(ctx, b.plain); err != nil {
			return err
		}
	}
	if b.cluster {
		return b.repairShards(ctx)
	}
	return nil
}

// connect dedicates a new connection to l, installs its hooks and
// subscribes every channel l carries.
func (b *Redis) connect(ctx context.Context, l *link) error {
	dedicate, addr := b.client.Dedicate, ""
	if l.shard {
		b.mu.Lock()
		addr = l.addr
		b.mu.Unlock()
		node := b.client.Nodes()[addr]
		if node == nil {
			return fmt.Errorf("fanout: the client has no connection to cluster node %s yet", addr)
		}
		dedicate = node.Dedicate
	} else {
		// The address is read before Dedicate: a switch in between then
		// shows as a move on the next check instead of going unnoticed.
		addr = b.masterAddr()
	}
	gen := b.gen.Add(1)
	sub, cancel := dedicate()
	wait := sub.SetPubSubHooks(b.hooks(l, gen))
	b.mu.Lock()
	if b.closed {
		// Close ran meanwhile: nothing would cancel this connection.
		b.mu.Unlock()
		cancel()
		return errClosed
	}
	select {
	case err := <-wait:
		// The connection could not be dialled. With no channel to
		// subscribe nothing else would fail, and the loop would spin.
		b.mu.Unlock()
		cancel()
		if err == nil {
			err = errConnClosed
		}
		return err
	default:
	}
	old := l.cancel
	l.sub, l.cancel, l.addr, l.down = sub, cancel, addr, false
	l.gen.Store(gen)
	// Snapshot in the same critical section that installs sub: a
	// subscribe either added its channel before (and is in the snapshot)
	// or reads the new sub afterwards.
	cmds := b.subscriptionsLocked(l)
	b.wg.Add(1)
	b.mu.Unlock()
	go b.watch(l, gen, wait)
	if old != nil {
		old()
	}
	for _, cmd := range cmds {
		if err := sub.Do(ctx, cmd).Error(); err != nil {
			b.mu.Lock()
			if l.gen.Load() == gen {
				l.down = true
			}
			b.mu.Unlock()
			return err
		}
	}
	return nil
}

// watch reports the end of l's connection gen to the loop.
func (b *Redis) watch(l *link, gen uint64, wait <-chan error) {
	defer b.wg.Done()
	err := <-wait
	if err == nil {
		err = errConnClosed
	}
	b.kick(event{l: l, gen: gen, err: err})
}

// subscriptionsLocked builds the commands subscribing every channel of l.
func (b *Redis) subscriptionsLocked(l *link) []rueidis.Completed {
	if l.shard {
		return b.shardSubscriptionsLocked(l)
	}
	return batches(slices.Collect(maps.Keys(b.channels)), func(c []string) rueidis.Completed { return l.sub.B().Subscribe().Channel(c...).Build() })
}

// batches builds one command per subscribeBatch channels of chs.
func batches(chs []string, build func([]string) rueidis.Completed) []rueidis.Completed {
	var out []rueidis.Completed
	for len(chs) > 0 {
		n := min(len(chs), subscribeBatch)
		out = append(out, build(chs[:n]))
		chs = chs[n:]
	}
	return out
}

// cancelsLocked returns the release of every link's connection.
func (b *Redis) cancelsLocked() []func() {
	var out []func()
	for _, l := range append([]*link{b.plain}, slices.Collect(maps.Values(b.shards))...) {
		if l.cancel != nil {
			out = append(out, l.cancel)
		}
	}
	return out
}

// masterCheckInterval is how often the subscriber's master is compared
// with the Sentinel client's.
const masterCheckInterval = time.Second

// masterAddr is the master a Sentinel client currently sends to, "" for
// other clients.
func (b *Redis) masterAddr() string {
	if b.client.Mode() != rueidis.ClientModeSentinel {
		return ""
	}
	for addr := range b.client.Nodes() {
		return addr
	}
	return ""
}

// subscribeTimeout bounds one repair: every (re)subscription.
const subscribeTimeout = 10 * time.Second

func (b *Redis) isClosed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed
}
