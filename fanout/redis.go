package fanout

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatstate/chatstate/internal/keys"
	"github.com/redis/rueidis"
)

// Redis is the Broker over Redis Pub/Sub (PUBLISH/SUBSCRIBE) for a
// standalone server, Sentinel (the subscriber follows the master) and
// Cluster. In Cluster every PUBLISH crosses the cluster bus: a user's
// channel is in the user's slot, while the commit script that publishes a
// message runs in its conversation's slot, and a script may only SPUBLISH
// to a shard channel of its own slot (docs/delivery.md, "Fan-out").
type Redis struct {
	client rueidis.Client
	keys   keys.Keys
	log    *slog.Logger
	h      Handler

	// mu guards the fields below it and serialises (re)connects.
	mu       sync.Mutex
	sub      rueidis.DedicatedClient
	subAddr  string // the Sentinel master sub was dedicated from; "" in other modes
	cancel   func()
	closed   bool
	started  bool          // the loop of Start runs
	done     chan struct{} // closed when the loop of Start ends
	channels map[string]struct{}

	// up is false while the subscriber is lost and not yet restored;
	// losses counts the losses. See Live.
	up     atomic.Bool
	losses atomic.Uint64

	// restoreDue is set while a restored subscriber has not yet called
	// Handler.Restored; the first publication it receives calls it first,
	// under restoreMu.
	restoreMu  sync.Mutex
	restoreDue atomic.Bool
	subGen     atomic.Uint64 // counts connects; only the newest subscriber restores
	runCtx     context.Context

	// userChanPrefix and convChanPrefix start the channel names of users
	// and conversations ("<prefix>user:{u:", "<prefix>conv:{c:").
	userChanPrefix, convChanPrefix string
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
	k := keys.New(cfg.KeyPrefix)
	return &Redis{client: client, keys: k, log: cfg.Logger,
		channels: make(map[string]struct{}), done: make(chan struct{}),
		userChanPrefix: strings.TrimSuffix(k.UserChannel(""), "}"),
		convChanPrefix: strings.TrimSuffix(k.ConversationChannel(""), "}")}
}

// route hands a publication to the handler by its channel's kind.
func (b *Redis) route(ch, msg string) {
	if id, ok := strings.CutPrefix(ch, b.convChanPrefix); ok && b.h.Conversation != nil {
		b.h.Conversation(strings.TrimSuffix(id, "}"), msg)
	} else if id, ok := strings.CutPrefix(ch, b.userChanPrefix); ok && b.h.Message != nil {
		b.h.Message(strings.TrimSuffix(id, "}"), msg)
	}
}

// Start opens the subscriber connection and keeps it open until ctx ends:
// after a Redis reconnect every current subscription is restored, and
// Handler.Lost and Handler.Restored bracket the gap.
func (b *Redis) Start(ctx context.Context, h Handler) error {
	b.h = h
	b.runCtx = ctx
	wait, err := b.connect(ctx)
	if err != nil {
		return err
	}
	b.up.Store(true)
	b.mu.Lock()
	b.started = true
	b.mu.Unlock()
	go func() {
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
			case <-moved.C:
				b.mu.Lock()
				if addr := b.masterAddr(); b.subAddr != "" && addr != "" && addr != b.subAddr && b.cancel != nil {
					b.log.Warn("redis master moved; moving pub/sub to it", "from", b.subAddr, "to", addr)
					b.cancel() // wait fires, and the loop below reconnects
				}
				b.mu.Unlock()
			case err := <-wait:
				b.mu.Lock()
				closed := b.closed
				b.mu.Unlock()
				if closed || ctx.Err() != nil {
					return
				}
				b.up.Store(false)
				b.losses.Add(1)
				if b.h.Lost != nil {
					b.h.Lost(err)
				}
				b.log.Warn("redis pub/sub connection lost; messages published until it is restored are not delivered live (clients resync by seq)", "err", err)
				backoff := 100 * time.Millisecond
				for {
					b.restoreDue.Store(true)
					if wait, err = b.connect(ctx); err == nil {
						break
					}
					if errors.Is(err, errClosed) {
						return
					}
					b.log.Warn("redis pub/sub reconnect failed", "err", err, "retry_in", backoff)
					select {
					case <-ctx.Done():
						return
					case <-time.After(backoff):
					}
					// Sends are refused until the subscriber is back
					// (see Live): retry often.
					backoff = min(backoff*2, time.Second)
				}
				b.log.Info("redis pub/sub restored", "channels", b.count())
				b.restore()
				// Only now: each socket gets its resync before the ack of
				// any send accepted from here on, so the sync it triggers
				// starts below that send's seq.
				b.up.Store(true)
			}
		}
	}()
	return nil
}

// connect dedicates a connection, installs the message hook and subscribes
// to every current channel, within subscribeTimeout so a hung Redis fails
// the attempt and the reconnect loop tries again.
func (b *Redis) connect(ctx context.Context) (<-chan error, error) {
	ctx, stop := context.WithTimeout(ctx, subscribeTimeout)
	defer stop()
	// The address is read before Dedicate: a switch in between then shows
	// as a move on the next check instead of going unnoticed.
	addr := b.masterAddr()
	gen := b.subGen.Add(1)
	sub, cancel := b.client.Dedicate()
	wait := sub.SetPubSubHooks(rueidis.PubSubHooks{OnMessage: func(m rueidis.PubSubMessage) {
		if b.restoreDue.Load() && b.subGen.Load() == gen {
			b.restore()
		}
		b.route(m.Channel, m.Message)
	}})
	b.mu.Lock()
	if b.closed {
		// Close ran meanwhile: nothing would cancel this connection.
		b.mu.Unlock()
		cancel()
		return nil, errClosed
	}
	select {
	case err := <-wait:
		// The connection could not be dialled. With no channel to
		// subscribe nothing else would fail, and the caller would spin on
		// wait.
		b.mu.Unlock()
		cancel()
		if err == nil {
			err = errors.New("pub/sub connection closed")
		}
		return nil, err
	default:
	}
	if b.cancel != nil {
		b.cancel()
	}
	b.sub, b.cancel = sub, cancel
	b.subAddr = addr
	// Snapshot in the same critical section that installs sub: a
	// SubscribeUser either added its channel before (and is in the
	// snapshot) or reads the new sub afterwards.
	channels := make([]string, 0, len(b.channels))
	for ch := range b.channels {
		channels = append(channels, ch)
	}
	b.mu.Unlock()
	for len(channels) > 0 {
		n := min(len(channels), subscribeBatch)
		if err := sub.Do(ctx, sub.B().Subscribe().Channel(channels[:n]...).Build()).Error(); err != nil {
			return nil, err
		}
		channels = channels[n:]
	}
	return wait, nil
}

// restore calls Handler.Restored once per restored subscriber, from the
// reconnect loop or from the first publication the subscriber delivers,
// whichever comes first.
func (b *Redis) restore() {
	b.restoreMu.Lock()
	defer b.restoreMu.Unlock()
	if b.restoreDue.Load() {
		if b.h.Restored != nil {
			b.h.Restored(b.runCtx)
		}
		b.restoreDue.Store(false)
	}
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

// Live reports whether the subscriber is connected, and a count of its
// losses.
func (b *Redis) Live() (losses uint64, up bool) { return b.losses.Load(), b.up.Load() }

// subscribeTimeout bounds one (re)subscription of every channel.
const subscribeTimeout = 10 * time.Second

// Done is closed when the loop of Start ends.
func (b *Redis) Done() <-chan struct{} { return b.done }

// Close closes the subscriber and waits for the loop of Start to end.
func (b *Redis) Close() {
	b.mu.Lock()
	b.closed = true
	if b.cancel != nil {
		b.cancel()
	}
	started := b.started
	b.mu.Unlock()
	if started {
		<-b.done
	}
}

var errClosed = errors.New("fanout: subscriber closed")

func (b *Redis) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.channels)
}

func (b *Redis) subscriber() rueidis.DedicatedClient {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sub
}

// SubscribeUser subscribes to userID's channel.
func (b *Redis) SubscribeUser(ctx context.Context, userID string) error {
	return b.subscribe(ctx, b.keys.UserChannel(userID))
}

// UnsubscribeUser unsubscribes from userID's channel.
func (b *Redis) UnsubscribeUser(ctx context.Context, userID string) error {
	return b.unsubscribe(ctx, b.keys.UserChannel(userID))
}

// SubscribeConversations subscribes to the channels of convIDs.
func (b *Redis) SubscribeConversations(ctx context.Context, convIDs []string) error {
	return b.subscribe(ctx, b.convChannels(convIDs)...)
}

// UnsubscribeConversations unsubscribes from the channels of convIDs.
func (b *Redis) UnsubscribeConversations(ctx context.Context, convIDs []string) error {
	return b.unsubscribe(ctx, b.convChannels(convIDs)...)
}

// ConversationChannel names convID's channel; see Broker.
func (b *Redis) ConversationChannel(convID string) (string, bool) {
	return b.keys.ConversationChannel(convID), false
}

func (b *Redis) convChannels(convIDs []string) []string {
	chs := make([]string, len(convIDs))
	for i, c := range convIDs {
		chs[i] = b.keys.ConversationChannel(c)
	}
	return chs
}

// subscribeBatch bounds the channels of one SUBSCRIBE.
const subscribeBatch = 1000

func (b *Redis) subscribe(ctx context.Context, chs ...string) error {
	if len(chs) == 0 {
		return nil
	}
	b.mu.Lock()
	for _, ch := range chs {
		b.channels[ch] = struct{}{}
	}
	sub := b.sub
	b.mu.Unlock()
	if sub == nil {
		b.forget(chs...)
		return errNotStarted
	}
	for rest := chs; len(rest) > 0; {
		n := min(len(rest), subscribeBatch)
		if err := sub.Do(ctx, sub.B().Subscribe().Channel(rest[:n]...).Build()).Error(); err != nil {
			b.forget(chs...)
			return err
		}
		rest = rest[n:]
	}
	return nil
}

var errNotStarted = errors.New("fanout: broker not started")

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
	sub := b.subscriber()
	if sub == nil {
		return nil
	}
	var errs []error
	for rest := chs; len(rest) > 0; {
		n := min(len(rest), subscribeBatch)
		errs = append(errs, sub.Do(ctx, sub.B().Unsubscribe().Channel(rest[:n]...).Build()).Error())
		rest = rest[n:]
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
