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
	"syscall"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/cache"
	"github.com/chatstate/chatstate/cleanup"
	"github.com/chatstate/chatstate/directory"
	"github.com/chatstate/chatstate/gateway"
	"github.com/chatstate/chatstate/httpapi"
	"github.com/chatstate/chatstate/internal/redisconn"
	"github.com/chatstate/chatstate/messaging"
	"github.com/chatstate/chatstate/mongostore"
	"github.com/chatstate/chatstate/presence"
	"github.com/chatstate/chatstate/socketio"
	"github.com/chatstate/chatstate/sqlitestore"
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

	client, closeRedis, err := openRedis(ctx, &cfg, log)
	if err != nil {
		return err
	}
	defer closeRedis()
	if len(cfg.JWTSecret) == 0 && cfg.JWTPublicKey == nil {
		return errors.New("CHATSTATE_JWT_SECRET (or CHATSTATE_JWT_PUBLIC_KEY_FILE) is required")
	}
	verifier, err := gateway.NewVerifier(cfg.JWTSecret, cfg.JWTPublicKey)
	if err != nil {
		return err
	}

	prefix := cfg.Redis.KeyPrefix
	state := presence.New(client, presence.Config{
		KeyPrefix: prefix, NodeID: cfg.NodeID, DeviceTTL: cfg.DeviceTTL, TypingTTL: cfg.TypingTTL,
		NodeTimeout: cfg.NodeTimeout, HeartbeatInterval: cfg.HeartbeatInterval, Logger: log,
	})
	if err := state.Heartbeat(ctx); err != nil {
		return fmt.Errorf("presence heartbeat: %w", err)
	}
	store, err := openStore(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer store.Close(context.Background())
	cch := cache.New(client, cache.Config{KeyPrefix: prefix})
	dir := directory.New(client, store, cch, directory.Config{KeyPrefix: prefix})
	msgs := messaging.New(cch, store, messaging.Config{AfterPersist: failpoint(cfg.FailAfterPersist)})

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	gw := gateway.New(gateway.Config{
		NodeID: state.Instance(), KeyPrefix: prefix,
		MessageRateLimit: cfg.RateLimit, MessageRateWindow: cfg.RateWindow, TypingTTL: cfg.TypingTTL,
		// Refresh connected devices three times per TTL (zero: the default).
		ActivityInterval: cfg.DeviceTTL / 3,
		Socket:           socketio.Config{AllowedOrigins: cfg.AllowedOrigins, PingInterval: cfg.PingInterval, PingTimeout: cfg.PingTimeout},
		Logger:           log,
	}, gateway.Deps{Redis: client, State: state, Cache: cch, Messages: msgs, LastSeen: store, Directory: dir, Verifier: verifier, Registerer: reg})

	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	if err := gw.Start(runCtx); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	cleaner := cleanup.New(cleanup.Config{KeyPrefix: prefix, Owner: state.Instance(), PresenceInterval: cfg.PresenceSweep, Logger: log},
		cleanup.Deps{Redis: client, Sessions: cch, Presence: state, OnPresenceChange: gw.BroadcastPresence})
	background := make(chan struct{}, 3)
	go func() { state.Run(runCtx); background <- struct{}{} }()
	go func() { cleaner.Run(runCtx); background <- struct{}{} }()
	go func() { msgs.Run(runCtx); background <- struct{}{} }()

	api := httpapi.New(httpapi.Config{APIKey: cfg.APIKey, Logger: log}, httpapi.Deps{
		Directory: dir, State: state, Messages: msgs,
		Ping: func(ctx context.Context) error {
			// rueidis retries a PING on a dead connection until ctx ends: bound
			// it, so /redis/health answers 503 during an outage or a failover
			// instead of hanging until Redis is back.
			ctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			return client.Do(ctx, client.B().Ping().Build()).Error()
		},
		Stats: func(ctx context.Context) (any, error) {
			st, err := cch.Stats(ctx)
			if err != nil {
				return nil, err
			}
			return map[string]any{"redis": st, "node": state.Instance(), "connections": gw.Connections()}, nil
		},
		Cleanup: func(ctx context.Context) (any, error) { return cleaner.RunOnce(ctx) },
		Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
	})
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", gw.Handler())
	mux.Handle("/", api)

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("chatstate serving", "addr", ln.Addr().String(), "node", state.Instance())
	fmt.Fprintf(stdout, "listening on %s\n", ln.Addr())

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return err
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Disconnect sockets first so their presence is cleared, then stop the
	// heartbeat, which marks this node dead for everyone else.
	gw.Close()
	srv.Shutdown(shutdownCtx)
	stopRun()
	for range cap(background) {
		<-background
	}
	return nil
}

// openRedis connects to the configured Redis or, when no REDIS_* variable
// is set, starts the embedded single-node development mode, where missing
// secrets get development defaults.
func openRedis(ctx context.Context, cfg *config, log *slog.Logger) (rueidis.Client, func(), error) {
	if cfg.Redis.Configured() {
		c, err := redisconn.Open(ctx, cfg.Redis, 5*time.Second)
		if err != nil {
			return nil, nil, err
		}
		return c, c.Close, nil
	}
	e, err := redisconn.StartEmbedded()
	if err != nil {
		return nil, nil, err
	}
	log.Warn("DEVELOPMENT MODE: no REDIS_* variable set, using an embedded in-process Redis; single node only, real-time state is lost on exit (messages persist in the store)")
	if len(cfg.JWTSecret) == 0 && cfg.JWTPublicKey == nil {
		cfg.JWTSecret = []byte(devJWTSecret)
		log.Warn("DEVELOPMENT MODE: CHATSTATE_JWT_SECRET not set, using the development secret; get a token with: chatstate token --user alice")
	}
	if cfg.APIKey == "" {
		cfg.APIKey = devAPIKey
		log.Warn("DEVELOPMENT MODE: CHATSTATE_API_KEY not set, using " + devAPIKey)
	}
	return e.Client, e.Close, nil
}

// Development defaults of the embedded mode only; a server with Redis
// configured refuses to start without real secrets.
const (
	devJWTSecret = "chatstate-development-secret"
	devAPIKey    = "dev-api-key"
)

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil || level == "" {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

var _ chatstate.RealTimeState = (*presence.State)(nil)

// openStore opens MongoDB when MONGODB_URI is set, else the embedded SQLite
// store under CHATSTATE_DATA_DIR.
func openStore(ctx context.Context, cfg config, log *slog.Logger) (chatstate.Store, error) {
	if cfg.MongoURI != "" {
		s, err := mongostore.Open(ctx, cfg.MongoURI, cfg.MongoDatabase, mongostore.Config{})
		if err != nil {
			return nil, fmt.Errorf("mongodb: %w", err)
		}
		log.Info("store: MongoDB")
		return s, nil
	}
	path := filepath.Join(cfg.DataDir, "chatstate.db")
	s, err := sqlitestore.Open(ctx, path, sqlitestore.Config{})
	if err != nil {
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	log.Info("store: embedded SQLite (set MONGODB_URI for MongoDB)", "path", path)
	return s, nil
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
