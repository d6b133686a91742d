package fanout

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/redis/rueidis"
)

// Redis is the Broker over Redis Pub/Sub for a standalone server, Sentinel
// (the subscriber follows the master) and Cluster.
//
// Outside Cluster one dedicated connection SUBSCRIBEs every channel. On a
// Cluster user channels stay on that connection: a user's channel is in
// the user's slot and is published with PUBLISH from other slots, so those
// publications cross the cluster bus. Conversation channels are shard
// channels there: the commit script SPUBLISHes each message to its
// conversation's channel, which is in the script's own slot, and the broker
// SSUBSCRIBEs it on a dedicated connection to the master owning that slot
// (one connection per master, sharded.go), so a message crosses one shard,
// not the whole cluster, and a conversation's messages stay in order on
// one connection (docs/delivery.md, "Fan-out").
//
// For the Handler the connections are one subscriber: it is lost when any
// of them is (or a master stops owning a subscribed slot, which makes Redis
// drop its shard subscriptions), and restored once every connection is up
// and every channel subscribed where it belongs. In between no connection
// delivers anything, so nothing can reach a socket before its resync.
type Redis struct {
	client rueidis.Client
	names
	log     *slog.Logger
	h       Handler
	cluster bool // conversation channels are shard channels
	runCtx  context.Context

	// mu guards the fields below it and the links' connections. It is
	// never held across a round trip or a connection's release: the
	// connections' readers take it (kick, onShardSubscription).
	mu       sync.Mutex
	plain    *link
	shards   map[string]*link    // Cluster: one link per master of topo, by address
	topo     topology            // Cluster: the slot owners last read
	channels map[string]struct{} // the plain link's channels
	// conv holds the shard channels by slot (Cluster); resub the slots
	// whose channels the next repair subscribes again (moved, or dropped
	// by Redis).
	conv    map[uint16]map[string]struct{}
	resub   map[uint16]struct{}
	events  []event // reported by connections, taken by the loop
	closed  bool
	started bool           // the loop of Start runs
	wg      sync.WaitGroup // the watchers of the connections (watch)

	wake    chan struct{} // capacity 1: events are pending
	closing chan struct{} // closed by Close; cuts a backoff short
	done    chan struct{} // closed when the loop of Start ends
	gen     atomic.Uint64 // numbers the connections

	// up is false while the subscriber is lost and not yet restored;
	// losses counts the losses. See Live.
	up     atomic.Bool
	losses atomic.Uint64

	// deliverMu serialises the Handler's calls across connections. broken
	// (guarded by it) is set from a loss until Restored: publications are
	// dropped meanwhile, as Lost announces, and the resync after Restored
	// covers them. Restored runs in the same critical section that clears
	// it, so no publication is delivered before it.
	deliverMu sync.Mutex
	broken    bool
}

var _ Broker = (*Redis)(nil)

// RedisConfig configures a Redis broker.
type RedisConfig struct {
	KeyPrefix string
	// Logger: nil means slog.Default().
	Logger *slog.Logger
}

// NewRedis returns a broker on client. It does no I/O until Start.
func NewRedis(client Client, cfg RedisConfig) *Redis {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Redis{client: client, names: newNames(cfg.KeyPrefix), log: cfg.Logger,
		cluster: client.Mode() == rueidis.ClientModeCluster,
		plain:   &link{down: true}, shards: make(map[string]*link),
		channels: make(map[string]struct{}), conv: make(map[uint16]map[string]struct{}),
		resub: make(map[uint16]struct{}),
		wake:  make(chan struct{}, 1), closing: make(chan struct{}), done: make(chan struct{})}
}

// Start opens the subscriber's connections and keeps them open until ctx
// ends: after a loss every current subscription is restored, and
// Handler.Lost and Handler.Restored bracket the gap.
func (b *Redis) Start(ctx context.Context, h Handler) error {
	b.h = h
	b.runCtx = ctx
	if err := b.repair(ctx); err != nil {
		b.mu.Lock()
		cancels := b.cancelsLocked()
		b.mu.Unlock()
		for _, c := range cancels {
			c()
		}
		b.wg.Wait()
		return err
	}
	b.up.Store(true)
	b.mu.Lock()
	b.started = true
	b.mu.Unlock()
	go b.run(ctx)
	return nil
}

// Live reports whether every connection of the subscriber is up, and a
// count of its losses.
func (b *Redis) Live() (losses uint64, up bool) { return b.losses.Load(), b.up.Load() }

// Done is closed when the loop of Start ends.
func (b *Redis) Done() <-chan struct{} { return b.done }

// Close closes the subscriber's connections and waits for the loop of
// Start and the connections' watchers to end.
func (b *Redis) Close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.closing)
	}
	cancels := b.cancelsLocked()
	started := b.started
	b.mu.Unlock()
	for _, c := range cancels {
		c()
	}
	if started {
		<-b.done
	}
	b.wg.Wait()
}

var (
	errClosed     = errors.New("fanout: subscriber closed")
	errConnClosed = errors.New("fanout: pub/sub connection closed")
	errNotStarted = errors.New("fanout: broker not started")
)

func (b *Redis) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(b.channels)
	for _, set := range b.conv {
		n += len(set)
	}
	return n
}

// SubscribeUser subscribes to userID's channel.
func (b *Redis) SubscribeUser(ctx context.Context, userID string) error {
	return b.subscribe(ctx, b.keys.UserChannel(userID))
}

// UnsubscribeUser unsubscribes from userID's channel.
func (b *Redis) UnsubscribeUser(ctx context.Context, userID string) error {
	return b.unsubscribe(ctx, b.keys.UserChannel(userID))
}

// SubscribeConversations subscribes to the channels of convIDs: shard
// channels on a Cluster.
func (b *Redis) SubscribeConversations(ctx context.Context, convIDs []string) error {
	if b.cluster {
		return b.ssubscribe(ctx, b.convChannels(convIDs))
	}
	return b.subscribe(ctx, b.convChannels(convIDs)...)
}

// UnsubscribeConversations unsubscribes from the channels of convIDs.
func (b *Redis) UnsubscribeConversations(ctx context.Context, convIDs []string) error {
	if b.cluster {
		return b.sunsubscribe(ctx, b.convChannels(convIDs))
	}
	return b.unsubscribe(ctx, b.convChannels(convIDs)...)
}

// ConversationChannel names convID's channel; see Broker. It is a shard
// channel on a Cluster.
func (b *Redis) ConversationChannel(convID string) (string, bool) {
	return b.keys.ConversationChannel(convID), b.cluster
}

// subscribeBatch bounds the channels of one SUBSCRIBE or SSUBSCRIBE.
const subscribeBatch = 1000

// subscribe subscribes chs on the plain link.
func (b *Redis) subscribe(ctx context.Context, chs ...string) error {
	if len(chs) == 0 {
		return nil
	}
	b.mu.Lock()
	for _, ch := range chs {
		b.channels[ch] = struct{}{}
	}
	sub := b.plain.sub
	b.mu.Unlock()
	if sub == nil {
		b.forget(chs...)
		return errNotStarted
	}
	for _, cmd := range batches(chs, func(c []string) rueidis.Completed { return sub.B().Subscribe().Channel(c...).Build() }) {
		if err := sub.Do(ctx, cmd).Error(); err != nil {
			b.forget(chs...)
			return err
		}
	}
	return nil
}

func (b *Redis) forget(chs ...string) {
	b.mu.Lock()
	for _, ch := range chs {
		delete(b.channels, ch)
	}
	b.mu.Unlock()
}

func (b *Redis) unsubscribe(ctx context.Context, chs ...string) error {
	if len(chs) == 0 {
		return nil
	}
	b.forget(chs...)
	b.mu.Lock()
	sub := b.plain.sub
	b.mu.Unlock()
	if sub == nil {
		return nil
	}
	var errs []error
	for _, cmd := range batches(chs, func(c []string) rueidis.Completed { return sub.B().Unsubscribe().Channel(c...).Build() }) {
		errs = append(errs, sub.Do(ctx, cmd).Error())
	}
	return errors.Join(errs...)
}

// PublishToUsers publishes payload to each user's channel, pipelined.
func (b *Redis) PublishToUsers(ctx context.Context, userIDs []string, payload string) error {
	if len(userIDs) == 0 {
		return nil
	}
	cmds := make(rueidis.Commands, 0, len(userIDs))
	for _, u := range userIDs {
		cmds = append(cmds, b.client.B().Publish().Channel(b.keys.UserChannel(u)).Message(payload).Build())
	}
	var errs []error
	for _, res := range b.client.DoMulti(ctx, cmds...) {
		if err := res.Error(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
