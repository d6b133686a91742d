// Package gateway is the WebSocketState service: it authenticates Socket.IO
// clients, keeps connect/disconnect bookkeeping (through the presence
// service), handles the chat events and fans messages out, through a
// fanout.Broker, to whichever node holds each recipient.
package gateway

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/cache"
	"github.com/chatstate/chatstate/fanout"
	"github.com/chatstate/chatstate/internal/keys"
	"github.com/chatstate/chatstate/internal/luascript"
	"github.com/chatstate/chatstate/messaging"
	"github.com/chatstate/chatstate/socketio"
	"github.com/prometheus/client_golang/prometheus"
)

// Config of a gateway node. Zero values mean the documented defaults.
type Config struct {
	// NodeID names this node in socket records and logs.
	NodeID    string
	KeyPrefix string
	// MessageRateLimit messages per MessageRateWindow per user; zero means 10 per 60s.
	MessageRateLimit  int
	MessageRateWindow time.Duration
	// TypingTTL must match the presence service's; zero means 10s. A
	// `typing: false` is sent when a start is not renewed within it.
	TypingTTL time.Duration
	// ActivityInterval is how often the presence of every local device is
	// refreshed while its socket stays connected; zero means 100s (a third
	// of the 5-minute device TTL).
	ActivityInterval time.Duration
	// SocketTTL bounds how long a socket record outlives a crashed node;
	// zero means 24h.
	SocketTTL time.Duration
	// MaxBulk caps presence:get ids; zero means 500.
	MaxBulk int
	// SyncLimit caps messages:sync; zero means 100.
	SyncLimit int
	// EventRate and EventBurst bound client events per socket (a token
	// bucket in process); zero means 20 per second with bursts of 60.
	EventRate  float64
	EventBurst int
	// DrainGrace is how long Drain waits after closing the last socket, so
	// clients that reconnect elsewhere take their presence over before the
	// caller marks this node dead; zero means 5s, which covers
	// socket.io-client's first two attempts (0.5-1.5 s, then 1-3 s later,
	// in case a load balancer still sent the first one here).
	DrainGrace time.Duration
	// HoldAckUntilDrain is a fault-injection hook for the drain test: the
	// ack of a message:send with exactly this content waits until Drain has
	// asked the sender's socket to close. Empty (the default) disables it.
	HoldAckUntilDrain string
	// EventTimeout bounds the work of one client event (and of a
	// connect's registration): when Redis or the store does not answer
	// within it, the ack says unavailable with retryAfterMs instead of
	// arriving late or never. Zero means 5s; clients should allow at least
	// twice that for an ack before they resend (same clientMessageId).
	// A disconnect's bookkeeping gets twice it; a failed offline is then
	// retried in the background.
	EventTimeout time.Duration
	// ReceiptInterval is the least time between two receipts of one
	// reader in one conversation (across nodes); reads within it are
	// merged into one receipt sent when it has passed. Zero means 1s.
	ReceiptInterval time.Duration
	// TrustedProxies are the direct peers (load balancers) whose
	// X-Forwarded-For or X-Real-IP names the client's address in sessions,
	// socket records and the security log; empty trusts none (the TCP
	// peer's address is the client's).
	TrustedProxies []netip.Prefix
	// SessionActivityInterval: a connection extends its session (and its
	// lastActivity) at most this often, on a client event or the activity
	// refresh; zero means 60s.
	SessionActivityInterval time.Duration
	// SessionTTL must match the cache's (cache.Config.SessionTTL); zero
	// means 1h. Sessions of connected devices are extended at least every
	// third of it, even when ActivityInterval is longer.
	SessionTTL time.Duration
	Socket     socketio.Config
	Logger     *slog.Logger

	// afterDisconnect, a test hook, runs at the end of each onDisconnect.
	afterDisconnect func(userID, deviceID string)
}

func (c *Config) setDefaults() {
	if c.MessageRateLimit == 0 {
		c.MessageRateLimit = 10
	}
	if c.MessageRateWindow == 0 {
		c.MessageRateWindow = time.Minute
	}
	if c.TypingTTL == 0 {
		c.TypingTTL = 10 * time.Second
	}
	if c.ActivityInterval == 0 {
		c.ActivityInterval = 100 * time.Second
	}
	if c.SocketTTL == 0 {
		c.SocketTTL = 24 * time.Hour
	}
	if c.MaxBulk == 0 {
		c.MaxBulk = 500
	}
	if c.SyncLimit == 0 {
		c.SyncLimit = 100
	}
	if c.EventRate == 0 {
		c.EventRate = 20
	}
	if c.EventBurst == 0 {
		c.EventBurst = 60
	}
	if c.DrainGrace == 0 {
		c.DrainGrace = 5 * time.Second
	}
	if c.EventTimeout == 0 {
		c.EventTimeout = 5 * time.Second
	}
	if c.SessionActivityInterval == 0 {
		c.SessionActivityInterval = time.Minute
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = time.Hour
	}
	if c.ReceiptInterval <= 0 {
		c.ReceiptInterval = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Messages is the message flow (messaging.Service): durable send with
// fan-out, and catch-up reads.
type Messages interface {
	Send(ctx context.Context, msg chatstate.Message, pub cache.Publish) (messaging.Sent, error)
	// SendTo reads the recipients with the seq's reservation, so a member
	// removed by a lower seq's members entry never receives the message.
	SendTo(ctx context.Context, msg chatstate.Message, route messaging.Route) (messaging.Sent, error)
	Sync(ctx context.Context, conversationID string, afterSeq int64, limit int) ([]chatstate.Message, error)
	// Message returns a stored message with its current state (the target
	// of an edit, delete or reaction).
	Message(ctx context.Context, conversationID, id string) (chatstate.Message, error)
}

// LastSeenStore keeps a user's last-seen time beyond the presence TTLs.
type LastSeenStore interface {
	SetLastSeen(ctx context.Context, userID string, at int64) error
}

// Deps are the services the gateway uses.
type Deps struct {
	// Fanout carries live deliveries between nodes; nil means a Redis
	// broker on Redis (fanout.NewRedis).
	Fanout fanout.Broker
	// Redis is only used to build Fanout when it is nil.
	Redis fanout.Client
	State chatstate.RealTimeState
	// Sockets keeps socket records; nil means State's when it keeps them
	// (presence.State does), else none are kept.
	Sockets    chatstate.SocketRegistry
	Cache      chatstate.Cache
	Messages   Messages
	LastSeen   LastSeenStore // nil: last seen lives in Redis only
	Directory  chatstate.Directory
	Verifier   *Verifier
	Registerer prometheus.Registerer // nil: metrics are not registered
	Devices    Devices               // nil: device:register answers unavailable
	Notifier   Notifier              // nil: sent messages notify nobody offline
	// OnResync runs when this node's Pub/Sub subscriber was restored,
	// before clients are told to resync: Redis may have lost writes (a
	// failover, a restart), so reads should check the store for a while.
	OnResync func()
	Reads    Reads // nil: message:read and conversations:list answer unavailable, sync has no reads
}

// Gateway is one node of the Socket.IO gateway.
type Gateway struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	m    *metrics
	io   *socketio.Server
	hub  *hub
	// msgPrefix + message JSON + msgSuffix is the message:new packet.
	msgPrefix, msgSuffix string
	drainFrame           *socketio.Frame
	draining             atomic.Bool
	stop                 context.CancelFunc // ends the background work of Start
	wg                   sync.WaitGroup     // refreshActivity, retryOffline
	offline              *pendingOffline
	tasks                tasks // typing expiry, resync, held-back receipts
	receipts             receiptTimers
}

// client is the state of one connected socket.
type client struct {
	userID    string
	deviceID  string
	conn      *socketio.Conn
	ip        string // the client's address (Gateway.clientIP)
	userAgent string

	sessionTouched atomic.Int64 // unix ns of the last session extension
	rateLogged     atomic.Int64 // unix ns of the last rate_limited entry
	revoked        atomic.Bool  // the session was revoked: do not recreate it

	events bucket // client event rate
	// echo is signalled when a publication that excludes this socket (its
	// own message) arrives on its user's channel; see handleSend.
	echo chan struct{}

	mu     sync.Mutex
	typing map[string]*time.Timer // conversation -> expiry timer; nil until the first typing:start
	gone   bool

	// drainReq is closed when Drain asks this socket to close; it exists
	// only with Config.HoldAckUntilDrain (every connection pays for it).
	drainReq  chan struct{}
	drainOnce sync.Once
}

// New builds a gateway. Call Start before serving.
func New(cfg Config, deps Deps) *Gateway {
	cfg.setDefaults()
	g := &Gateway{cfg: cfg, deps: deps, log: cfg.Logger, m: newMetrics(deps.Registerer)}
	g.offline = newPendingOffline(g.m.offlinePending)
	if cfg.Socket.Logger == nil {
		cfg.Socket.Logger = cfg.Logger
	}
	g.io = socketio.NewServer(cfg.Socket)
	if deps.Fanout != nil {
		g.hub = newHubOn(deps.Fanout, g.log, g.m)
	} else {
		g.hub = newHub(deps.Redis, keys.New(cfg.KeyPrefix), g.log, g.m)
	}
	if g.deps.Sockets == nil {
		g.deps.Sockets, _ = deps.State.(chatstate.SocketRegistry)
	}
	pre, suf, err := socketio.EventPacketTemplate("message:new")
	if err != nil {
		panic(err) // a constant event name cannot fail to encode
	}
	g.msgPrefix, g.msgSuffix = string(pre)+`{"message":`, "}"+string(suf)
	if g.drainFrame, err = socketio.EncodeEvent(drainEvent, map[string]any{"reconnect": true, "reason": "shutdown"}); err != nil {
		panic(err)
	}
	g.hub.onResub = g.requestResync
	g.hub.onControl = g.onControl
	g.hub.listConvs = deps.Directory.ConversationsOf
	g.io.OnConnect(g.onConnect)
	g.io.OnEvent(g.onEvent)
	g.io.OnDisconnect(g.onDisconnect)
	return g
}

// Start opens the Pub/Sub subscriber, the activity refresher and the retry
// of failed offlines; they stop when ctx ends or Close is called.
func (g *Gateway) Start(ctx context.Context) error {
	ctx, g.stop = context.WithCancel(ctx)
	if err := g.hub.start(ctx); err != nil {
		g.stop()
		return err
	}
	g.wg.Add(2)
	go func() {
		defer g.wg.Done()
		g.refreshActivity(ctx)
	}()
	go func() {
		defer g.wg.Done()
		g.retryOffline(ctx)
	}()
	return nil
}

// PublishFor is how a message that no socket of this node sent is published
// to its conversation's members (messaging.Config.PublishFor): a node that
// settles a dead node's stored message publishes it with this.
func (g *Gateway) PublishFor(ctx context.Context, msg chatstate.Message) (cache.Publish, error) {
	members, err := g.deps.Directory.Members(ctx, msg.ConversationID)
	if err != nil {
		return cache.Publish{}, err
	}
	return g.messagePublish(msg.ConversationID, members, ""), nil
}

// messagePublish publishes message:new once, to the conversation's channel,
// for the local sockets of members on every node subscribed to it, except
// the socket excludeSocket (the sender's, which gets the ack instead). The
// recipients travel in the envelope (convsub.go): a node delivers only to
// them.
func (g *Gateway) messagePublish(convID string, members []string, excludeSocket string) cache.Publish {
	ch, sharded := g.hub.b.ConversationChannel(convID)
	return cache.Publish{Channel: ch, Sharded: sharded, Prefix: excludeSocket + "\x00" + strings.Join(members, ",") + "\x00" + g.msgPrefix,
		Suffix: g.msgSuffix, Members: members}
}

// Handler serves Socket.IO at the configured path (default /socket.io/).
func (g *Gateway) Handler() http.Handler { return g.io }

// Connections returns the number of sockets on this node.
func (g *Gateway) Connections() int { return g.io.Count() }

// Close disconnects every client and closes the subscriber. After Drain
// the remaining sockets are closed as drained ones; otherwise their
// presence is cleared as for any disconnect. It returns once every
// goroutine the gateway started has ended.
func (g *Gateway) Close() error {
	err := g.io.Close()
	if g.stop != nil {
		g.stop()
	}
	g.hub.close() // joins the subscriber loop, the only source of resyncs
	g.receipts.stop()
	g.tasks.closeAndWait()
	g.wg.Wait()
	return err
}

func (g *Gateway) onConnect(c *socketio.Conn, raw json.RawMessage) error {
	a, err := parseAuth(raw)
	if err != nil {
		return &socketio.ConnectError{Message: "unauthorized"}
	}
	id, reason := g.deps.Verifier.identify(a.Token)
	if reason != "" {
		g.logAuthFailed(c, a, reason)
		return &socketio.ConnectError{Message: "unauthorized"}
	}
	userID := id.UserID
	deviceID := a.DeviceID
	if deviceID == "" {
		// A client without a stable device id is a device of its own.
		deviceID = "s-" + c.ID()
	}
	if err := chatstate.ValidateID("deviceId", deviceID); err != nil {
		return &socketio.ConnectError{Message: "invalid", Data: chatstate.Payload(err)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.EventTimeout)
	defer cancel()
	req := c.Request() // a new copy each call
	cl := &client{userID: userID, deviceID: deviceID, conn: c, ip: g.clientIP(req), userAgent: userAgent(req),
		echo: make(chan struct{}, 1)}
	if g.cfg.HoldAckUntilDrain != "" {
		cl.drainReq = make(chan struct{}) // only the drain test's hook waits on it
	}
	if err := g.hub.add(ctx, userID, c); err != nil {
		g.log.Warn("subscribe failed", "user", userID, "err", err)
		return connectRefused(err)
	}
	change, newDevice, err := g.register(ctx, cl)
	if err != nil {
		g.hub.remove(ctx, userID, c)
		g.log.Warn("register socket failed", "user", userID, "err", err)
		g.unregister(cl)
		return connectRefused(err)
	}
	c.SetData(cl)
	g.m.connections.Inc()
	// Login: the friend list is loaded into the cache (from the store on a
	// miss) now, so presence fan-out and later reads hit Redis.
	friends, err := g.deps.Directory.Friends(ctx, userID)
	if err != nil {
		g.log.Warn("friend list not loaded", "user", userID, "err", err)
	} else if change.Changed {
		g.publishPresenceTo(ctx, friends, change.After)
	}
	if newDevice {
		g.securityEvent(ctx, userID, chatstate.SecurityEvent{Type: SecurityNewDevice, IP: cl.ip, DeviceID: deviceID,
			Details: map[string]string{"userAgent": cl.userAgent}})
	}
	g.armExpiry(cl, id.ExpiresAt)
	return nil
}

// connectRefused is the connect_error of a registration that failed: its
// message is the error code (unavailable during an outage) and its data the
// error payload, with retryAfterMs when the client should retry.
func connectRefused(err error) *socketio.ConnectError {
	p := chatstate.Payload(chatstate.Classify(luascript.Err(err)))
	return &socketio.ConnectError{Message: p.Code, Data: p}
}

// register records the socket, the device's presence and its session, and
// reports whether the device had no session (a login from a new device).
func (g *Gateway) register(ctx context.Context, cl *client) (chatstate.PresenceChange, bool, error) {
	change, err := g.deps.State.SetUserOnline(ctx, cl.userID, cl.deviceID, cl.conn.ID())
	if err != nil {
		return change, false, err
	}
	now := time.Now().UnixMilli()
	newDevice, err := g.createSession(ctx, cl)
	if err != nil {
		return change, false, err
	}
	if g.deps.Sockets != nil {
		rec := chatstate.SocketRecord{SocketID: cl.conn.ID(), UserID: cl.userID, DeviceID: cl.deviceID, Node: g.cfg.NodeID,
			ConnectedAt: now, IP: cl.ip, UserAgent: cl.userAgent}
		if err := g.deps.Sockets.RegisterSocket(ctx, rec, g.cfg.SocketTTL); err != nil {
			return change, false, err
		}
	}
	return change, newDevice, nil
}

// unregister undoes what a refused connect's register may have written:
// the device would otherwise look online, and get no pushes, for the device
// TTL with no socket behind it. The offline queue does it in the
// background, so the refusal is not delayed by a Redis that is failing; it
// removes the device only while it is still registered with this socket,
// so a quick retry's newer socket is kept.
func (g *Gateway) unregister(cl *client) {
	if !g.offline.add(cl, true) {
		g.log.Warn("offline queue full: the refused socket's device expires", "user", cl.userID)
	}
}

func (g *Gateway) onDisconnect(c *socketio.Conn, reason string) {
	cl, ok := c.Data().(*client)
	if !ok {
		return // refused at connect
	}
	g.m.connections.Dec()
	if g.cfg.afterDisconnect != nil {
		defer g.cfg.afterDisconnect(cl.userID, cl.deviceID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*g.cfg.EventTimeout)
	defer cancel()
	cl.mu.Lock()
	cl.gone = true
	typing := make([]string, 0, len(cl.typing))
	for conv, t := range cl.typing {
		t.Stop()
		typing = append(typing, conv)
	}
	clear(cl.typing)
	cl.mu.Unlock()
	for _, conv := range typing {
		if err := g.deps.State.StopUserTyping(ctx, cl.userID, conv); err == nil {
			g.announceTyping(ctx, conv, cl.userID, false)
		}
	}
	g.hub.remove(ctx, cl.userID, c)
	if g.deps.Sockets != nil {
		if err := g.deps.Sockets.RemoveSocket(ctx, c.ID()); err != nil {
			g.log.Warn("socket record not removed; it expires", "socket", c.ID(), "err", err)
		}
	}
	if g.drainedDisconnect(reason) {
		// The device stays online, and keeps its session, for its
		// reconnect elsewhere (see Drain).
		// Its activity becomes now, so if it does not come back its last
		// seen is this moment rather than its last refresh.
		if err := g.deps.State.TouchDevice(ctx, cl.userID, cl.deviceID); err != nil && chatstate.ErrorCode(err) != chatstate.ENOTFOUND {
			g.log.Warn("drained device not touched", "user", cl.userID, "err", err)
		}
		return
	}
	if err := g.goOffline(ctx, cl, false); err != nil {
		if g.offline.add(cl, false) {
			g.log.Warn("presence offline failed; retried until Redis answers", "user", cl.userID, "err", err)
		} else {
			g.log.Error("presence offline failed and the retry queue is full; the device and its session expire with their TTLs", "user", cl.userID, "err", err)
		}
	}
	g.log.Debug("disconnect", "user", cl.userID, "device", cl.deviceID, "reason", reason)
}

// refreshActivity keeps the devices of connected sockets alive in presence,
// and their sessions: a connected socket is activity even when its user is
// idle. When ActivityInterval is longer than a third of the session TTL,
// sessions get rounds of their own in between.
func (g *Gateway) refreshActivity(ctx context.Context) {
	t := time.NewTicker(g.cfg.ActivityInterval)
	defer t.Stop()
	var sessions <-chan time.Time
	if keep := g.cfg.SessionTTL / 3; keep < g.cfg.ActivityInterval {
		st := time.NewTicker(keep)
		defer st.Stop()
		sessions = st.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.refreshAll(ctx)
		case <-sessions:
			g.refreshSessions(ctx)
		}
	}
}

// refreshSessions extends the sessions of every local socket (when due).
func (g *Gateway) refreshSessions(ctx context.Context) {
	g.hub.each(func(userID string, c *socketio.Conn) {
		if cl, ok := c.Data().(*client); ok {
			if err := g.touchSession(ctx, cl, true); err != nil && ctx.Err() == nil {
				g.log.Warn("session refresh failed", "user", userID, "err", err)
			}
		}
	})
}

// refreshAll touches every local device, registering again those whose
// entry is gone (Redis lost its data, or this node was briefly declared
// dead).
// It returns how many devices could not be refreshed.
func (g *Gateway) refreshAll(ctx context.Context) int {
	var (
		wg     sync.WaitGroup
		failed atomic.Int64
	)
	sem := make(chan struct{}, 256)
	g.hub.each(func(userID string, c *socketio.Conn) {
		cl, ok := c.Data().(*client)
		if !ok {
			return
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			err := g.deps.State.TouchDevice(ctx, userID, cl.deviceID)
			if chatstate.ErrorCode(err) == chatstate.ENOTFOUND {
				var change chatstate.PresenceChange
				if change, err = g.deps.State.SetUserOnline(ctx, userID, cl.deviceID, c.ID()); err == nil && change.Changed {
					g.publishPresence(ctx, change.After)
				}
			}
			if err != nil && ctx.Err() == nil {
				failed.Add(1)
				g.log.Warn("presence refresh failed", "user", userID, "err", err)
			}
			if err := g.touchSession(ctx, cl, true); err != nil && ctx.Err() == nil {
				g.log.Warn("session refresh failed", "user", userID, "err", err)
			}
		}()
	})
	wg.Wait()
	return int(failed.Load())
}

// requestResync tells every local socket that live delivery had a gap, so
// clients catch up with messages:sync from their last seq, and re-registers
// their presence in case Redis lost it.
func (g *Gateway) requestResync(ctx context.Context) {
	if !g.tasks.add() {
		return
	}
	if g.deps.OnResync != nil {
		// Before the resync frames: the syncs they trigger must already
		// check the store (messaging.Service.Verify).
		g.deps.OnResync()
	}
	go func() {
		defer g.tasks.done()
		// Right after a reconnect the command connections may still be
		// dialling: retry with backoff rather than wait for the next
		// activity round.
		for backoff := 100 * time.Millisecond; g.refreshAll(ctx) > 0 && backoff <= 3200*time.Millisecond; backoff *= 2 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
		}
	}()
	f, err := socketio.EncodeEvent("resync", map[string]any{"reason": "redis_reconnect"})
	if err != nil {
		return
	}
	g.hub.each(func(_ string, c *socketio.Conn) { c.Send(f) })
}
