package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/cache"
	"github.com/chatstate/chatstate/cleanup"
	"github.com/chatstate/chatstate/directory"
	"github.com/chatstate/chatstate/fanout"
	"github.com/chatstate/chatstate/gateway"
	"github.com/chatstate/chatstate/httpapi"
	"github.com/chatstate/chatstate/internal/luascript"
	"github.com/chatstate/chatstate/internal/redisconn"
	"github.com/chatstate/chatstate/messaging"
	"github.com/chatstate/chatstate/mongostore"
	"github.com/chatstate/chatstate/presence"
	"github.com/chatstate/chatstate/socketio"
	"github.com/chatstate/chatstate/sqlitestore"
	"github.com/chatstate/chatstate/web"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/rueidis"
)

// serve runs the server until ctx ends. It prints "listening on <addr>" to
// stdout once it accepts connections, which tests wait for.
func serve(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)

	client, embedded, closeRedis, err := openRedis(ctx, &cfg, log)
	if err != nil {
		return err
	}
	defer closeRedis()
	verifier, err := gateway.NewVerifierConfig(gateway.VerifierConfig{Secret: cfg.JWTSecret, PublicKey: cfg.JWTPublicKey,
		Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, AllowMissingExp: !cfg.JWTRequireExp})
	if err != nil {
		return err
	}

	prefix := cfg.Redis.KeyPrefix
	var gw *gateway.Gateway // built below; the flow publishes settled strays through it, heartbeats report its connections
	state := presence.New(client, presence.Config{
		KeyPrefix: prefix, NodeID: cfg.NodeID, DeviceTTL: cfg.DeviceTTL, TypingTTL: cfg.TypingTTL,
		NodeTimeout: cfg.NodeTimeout, HeartbeatInterval: cfg.HeartbeatInterval, Logger: log,
		Connections: func() int {
			if gw == nil { // the first heartbeat, before the gateway exists
				return 0
			}
			return gw.Connections()
		},
	})
	if err := state.Heartbeat(ctx); err != nil {
		return fmt.Errorf("presence heartbeat: %w", err)
	}
	store, err := openStore(ctx, cfg, state, log)
	if err != nil {
		return err
	}
	defer store.Close(context.Background())
	cch := cache.New(client, cache.Config{KeyPrefix: prefix, SettleTimeout: cfg.SettleTimeout})
	dir := directory.New(client, store, cch, directory.Config{KeyPrefix: prefix})
	msgs := messaging.New(cch, store, messaging.Config{
		PublishFor:    func(ctx context.Context, m chatstate.Message) (cache.Publish, error) { return gw.PublishFor(ctx, m) },
		BeforePersist: holdpoint(cfg.HoldPersist, cfg.TestDir), AfterPersist: both(storedpoint(cfg.TestDir), failpoint(cfg.FailAfterPersist)),
		Reads: store, Members: dir.Members,
	})

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(luascript.Collectors()...)
	pushes, err := newPushing(ctx, cfg, client, state, store, cch, reg, func(ctx context.Context, n chatstate.Notification) { gw.NotifyLive(ctx, n) }, log)
	if err != nil {
		return err
	}
	gw = gateway.New(gateway.Config{
		NodeID: state.Instance(), KeyPrefix: prefix,
		MessageRateLimit: cfg.RateLimit, MessageRateWindow: cfg.RateWindow, TypingTTL: cfg.TypingTTL,
		// Refresh connected devices three times per TTL (zero: the default).
		ActivityInterval:        cfg.DeviceTTL / 3,
		HoldAckUntilDrain:       cfg.HoldAckUntilDrain,
		TrustedProxies:          cfg.TrustedProxies,
		SessionActivityInterval: cfg.SessionActivity,
		Socket:                  socketio.Config{AllowedOrigins: cfg.AllowedOrigins, PingInterval: cfg.PingInterval, PingTimeout: cfg.PingTimeout},
		Logger:                  log,
	}, gateway.Deps{Fanout: newBroker(client, embedded, prefix, log), State: state, Cache: cch, Messages: msgs, LastSeen: store, Directory: dir, Verifier: verifier, Registerer: reg,
		Devices: store, Notifier: pushes.notifier, Reads: msgs,
		// Redis may have lost writes: reads check the store for a minute.
		OnResync: func() { msgs.Verify(time.Minute) }})

	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	if err := gw.Start(runCtx); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	cleaner := cleanup.New(cleanup.Config{KeyPrefix: prefix, Owner: state.Instance(), Logger: log,
		PresenceInterval: cfg.PresenceSweep, SessionInterval: cfg.SessionSweep, NotificationInterval: cfg.NotificationSweep, TypingInterval: cfg.TypingSweep},
		cleanup.Deps{Redis: client, Sessions: cch, Presence: state, Queue: pushes.queue, Cache: cch,
			OnPresenceChange: gw.BroadcastPresence, SetDepth: pushes.metrics.SetDepth, Registerer: reg})
	background := make(chan struct{}, 4)
	go func() { state.Run(runCtx); background <- struct{}{} }()
	go func() { pushes.run(runCtx); background <- struct{}{} }()
	go func() { cleaner.Run(runCtx); background <- struct{}{} }()
	go func() { msgs.Run(runCtx); background <- struct{}{} }()

	api := httpapi.New(httpapi.Config{APIKey: cfg.APIKey, Logger: log}, httpapi.Deps{
		Directory: dir, State: state, Messages: msgs, Conversations: conversations{msgs, gw}, ChangeMembers: gw.ChangeMembers,
		Ping:     func(ctx context.Context) error { return redisconn.Ping(ctx, client) },
		Draining: gw.Draining,
		Stats: func(ctx context.Context) (any, error) {
			r, err := cleaner.Stats(ctx)
			return nodeStats{Node: state.Instance(), NodeConnections: gw.Connections(), Report: r}, err
		},
		Cleanup: func(ctx context.Context) (any, error) {
			// A sweep over every user outlasts the API's request timeout on
			// a large Redis; it runs to its end (under its locks) even if
			// the caller gives up.
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), manualCleanupTimeout)
			defer cancel()
			return cleaner.RunOnce(ctx)
		},
		Metrics:            promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		Devices:            store,
		Notifications:      pushes.notifier,
		Sessions:           cch,
		RevokeSession:      gw.RevokeSession,
		Backend:            gw,
		ConversationReader: store,
	})
	pages := web.New(web.Config{Demo: cfg.Demo, Development: cfg.Dev, Logger: log}, web.Deps{
		Verify: verifier.Verify, Mint: demoMint(cfg), Directory: dir,
		ConversationCreated: conversations{msgs, gw}.ConversationCreated, EmitToUser: gw.EmitToUser,
	})
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", gw.Handler())
	for _, route := range web.Routes {
		mux.Handle(route, pages)
	}
	mux.Handle("/", api)

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("chatstate serving", "addr", ln.Addr().String(), "node", state.Instance())
	if cfg.Demo {
		log.Info("demo chat at http://" + browsable(ln.Addr().String()) + "/, operator dashboard at /admin")
	}
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())

	var serveFailed error
	select {
	case <-ctx.Done():
	case serveFailed = <-serveErr:
	}
	if serveFailed == nil && cfg.Redis.Configured() {
		// Other nodes can take the clients over (the embedded mode has none,
		// and its state dies with the process): readiness fails, then the
		// sockets move across the window with their presence kept.
		gw.Drain(context.Background(), cfg.DrainWindow)
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Sockets go first (without a drain their presence is cleared), then
	// the heartbeat stops, which marks this node dead for everyone else:
	// the presence sweep of the other nodes then announces the drained
	// devices that did not reconnect.
	gw.Close()
	srv.Shutdown(shutdownCtx)
	if serveFailed == nil {
		<-serveErr // http.ErrServerClosed
	}
	stopRun()
	for range cap(background) {
		<-background
	}
	return serveFailed
}

// browsable is addr as a browser on this machine reaches it: a listener on
// every interface is reached at localhost.
func browsable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// manualCleanupTimeout bounds POST /redis/cleanup.
const manualCleanupTimeout = 5 * time.Minute

// nodeStats is GET /redis/stats: the Cleanup service's Report (every
// node's connections, from the heartbeats) and the serving node's own.
type nodeStats struct {
	Node            string `json:"node"`
	NodeConnections int    `json:"nodeConnections"`
	cleanup.Report
}

// openRedis connects to the configured Redis or, when no Redis address is
// set, starts the embedded single-node development mode (loadConfig has
// filled in its development secrets) and returns it too.
func openRedis(ctx context.Context, cfg *config, log *slog.Logger) (rueidis.Client, *redisconn.Embedded, func(), error) {
	if !cfg.Dev {
		c, err := redisconn.Open(ctx, cfg.Redis, 5*time.Second)
		if err != nil {
			return nil, nil, nil, err
		}
		return c, nil, c.Close, nil
	}
	e, err := redisconn.StartEmbedded()
	if err != nil {
		return nil, nil, nil, err
	}
	log.Warn("DEVELOPMENT MODE: no REDIS_* variable set, using an embedded in-process Redis; single node only, real-time state is lost on exit (messages persist in the store)")
	if cfg.DevJWTSecret {
		log.Warn("DEVELOPMENT MODE: CHATSTATE_JWT_SECRET not set, using the development secret; get a token with: chatstate token --user alice")
	}
	if cfg.DevAPIKey {
		log.Warn("DEVELOPMENT MODE: CHATSTATE_API_KEY not set, using " + devAPIKey)
	}
	return e.Client, e, e.Close, nil
}

// newBroker is the fan-out: inside the embedded Redis in the development
// mode (no round trip), else over Redis Pub/Sub.
func newBroker(client rueidis.Client, embedded *redisconn.Embedded, prefix string, log *slog.Logger) fanout.Broker {
	if embedded != nil {
		return fanout.NewInProcess(embedded.Server, prefix)
	}
	return fanout.NewRedis(client, fanout.RedisConfig{KeyPrefix: prefix, Logger: log})
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil || level == "" {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

var _ chatstate.RealTimeState = (*presence.State)(nil)

// openStore opens MongoDB when MONGODB_URI is set, else the embedded SQLite
// store under CHATSTATE_DATA_DIR. A per-node SQLite file behind a shared
// Redis splits history, resend deduplication and seq recovery across
// nodes, so it is refused while another node is live unless
// CHATSTATE_STORE=sqlite says single-node use is meant. state has
// heartbeat already, so two nodes starting at once see each other.
func openStore(ctx context.Context, cfg config, state *presence.State, log *slog.Logger) (chatstate.Store, error) {
	if cfg.MongoURI != "" {
		s, err := mongostore.Open(ctx, cfg.MongoURI, cfg.MongoDatabase, mongostore.Config{})
		if err != nil {
			return nil, fmt.Errorf("mongodb: %w", err)
		}
		log.Info("store: MongoDB")
		return s, nil
	}
	if !cfg.Dev && cfg.Store != storeSQLite {
		others, err := state.OtherLiveNodes(ctx)
		if err != nil {
			return nil, fmt.Errorf("presence: listing live nodes: %w", err)
		}
		if len(others) > 0 {
			leaveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			state.Leave(leaveCtx) // best effort: else this refused start counts as a live node for NODE_TIMEOUT
			return nil, fmt.Errorf("no MONGODB_URI and another node (%s) is live on this Redis: set MONGODB_URI so all nodes share one store, or CHATSTATE_STORE=sqlite to run a single node with its own file", others[0])
		}
	}
	path := filepath.Join(cfg.DataDir, "chatstate.db")
	s, err := sqlitestore.Open(ctx, path, sqlitestore.Config{Synchronous: cfg.SQLiteSync})
	if err != nil {
		return nil, fmt.Errorf("CHATSTATE_DATA_DIR=%q: sqlite store %s: %w", cfg.DataDir, path, err)
	}
	log.Info("store: embedded SQLite (set MONGODB_URI for MongoDB)", "path", path)
	return s, nil
}

// holdpoint returns the hold hook of CHATSTATE_TEST_HOLD_PERSIST: a message
// with exactly that content, its seq reserved, writes its seq to
// <CHATSTATE_TEST_DIR>/held and is not stored until <dir>/release exists
// (at most a minute).
func holdpoint(content, dir string) func(chatstate.Message) {
	if content == "" || dir == "" {
		return nil
	}
	return func(m chatstate.Message) {
		if m.Content != content {
			return
		}
		os.WriteFile(filepath.Join(dir, "held"), []byte(strconv.FormatInt(m.Seq, 10)), 0o644)
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if _, err := os.Stat(filepath.Join(dir, "release")); err == nil {
				return
			}
		}
	}
}

// storedpoint returns the hook that records each stored message as the
// file <CHATSTATE_TEST_DIR>/stored-<conversation>-<seq>, so delivery tests
// can tell a message is in the store while it is not yet readable.
func storedpoint(dir string) func(chatstate.Message) {
	if dir == "" {
		return nil
	}
	return func(m chatstate.Message) {
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("stored-%s-%d", m.ConversationID, m.Seq)), nil, 0o644)
	}
}

// failpoint returns the crash hook of CHATSTATE_TEST_FAIL_AFTER_PERSIST.
func failpoint(content string) func(chatstate.Message) {
	if content == "" {
		return nil
	}
	return func(m chatstate.Message) {
		if m.Content == content {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
}

// both runs the hooks that are set, in order.
func both(hooks ...func(chatstate.Message)) func(chatstate.Message) {
	var set []func(chatstate.Message)
	for _, h := range hooks {
		if h != nil {
			set = append(set, h)
		}
	}
	if len(set) == 0 {
		return nil
	}
	return func(m chatstate.Message) {
		for _, h := range set {
			h(m)
		}
	}
}

// conversations is the HTTP API's and the demo's view of the conversation
// list, where a created conversation also reaches its members' open
// sockets (the gateway's join).
type conversations struct {
	*messaging.Service
	gw *gateway.Gateway
}

// ConversationCreated puts c in its members' cached lists and announces it
// to their nodes.
func (c conversations) ConversationCreated(ctx context.Context, conv chatstate.Conversation) error {
	return errors.Join(c.Service.ConversationCreated(ctx, conv), c.gw.ConversationCreated(ctx, conv))
}
