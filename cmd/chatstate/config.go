package main

import (
	"crypto/rsa"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/chatstate/chatstate/internal/redisconn"
	"github.com/golang-jwt/jwt/v5"
)

// config is everything `chatstate serve` reads from the environment. Every
// variable is documented in README.md.
type config struct {
	Addr           string         // CHATSTATE_ADDR, default :8080
	NodeID         string         // CHATSTATE_NODE_ID, default host name + pid
	JWTSecret      []byte         // CHATSTATE_JWT_SECRET
	JWTPublicKey   *rsa.PublicKey // CHATSTATE_JWT_PUBLIC_KEY_FILE (RS256)
	APIKey         string         // CHATSTATE_API_KEY
	RateLimit      int            // CHATSTATE_MESSAGE_RATE_LIMIT, default 10
	RateWindow     time.Duration  // CHATSTATE_MESSAGE_RATE_WINDOW, default 60s
	AllowedOrigins []string       // CHATSTATE_ALLOWED_ORIGINS, comma separated; empty = any
	LogLevel       string         // CHATSTATE_LOG_LEVEL: debug, info, warn, error
	DrainWindow    time.Duration  // CHATSTATE_DRAIN_WINDOW, default 10s: sockets are closed across it on SIGTERM

	// Tuning, mostly for tests and demos; zero means the services' defaults.
	DeviceTTL         time.Duration // CHATSTATE_DEVICE_TTL (5m)
	TypingTTL         time.Duration // CHATSTATE_TYPING_TTL (10s)
	NodeTimeout       time.Duration // CHATSTATE_NODE_TIMEOUT (30s)
	HeartbeatInterval time.Duration // CHATSTATE_HEARTBEAT_INTERVAL (5s)
	PresenceSweep     time.Duration // CHATSTATE_PRESENCE_SWEEP_INTERVAL (15s)
	PingInterval      time.Duration // CHATSTATE_PING_INTERVAL (25s)
	PingTimeout       time.Duration // CHATSTATE_PING_TIMEOUT (20s)

	MongoURI      string // MONGODB_URI: use MongoDB; unset means the embedded SQLite store
	MongoDatabase string // MONGODB_DATABASE, default the URI's database, else "chatstate"
	DataDir       string // CHATSTATE_DATA_DIR, default ./data (SQLite file chatstate.db)
	// FailAfterPersist is a fault-injection hook for the crash tests: a
	// message with exactly this content kills the process (SIGKILL) right
	// after it is persisted, before it is cached, fanned out or acked.
	FailAfterPersist string // CHATSTATE_TEST_FAIL_AFTER_PERSIST
	// HoldAckUntilDrain: the ack of a message with exactly this content
	// waits until the drain closes its socket (gateway.Config).
	HoldAckUntilDrain string // CHATSTATE_TEST_HOLD_ACK_UNTIL_DRAIN

	Redis redisconn.Config
}

func loadConfig(getenv func(string) string) (config, error) {
	c := config{Addr: getenv("CHATSTATE_ADDR"), NodeID: getenv("CHATSTATE_NODE_ID"), APIKey: getenv("CHATSTATE_API_KEY"), LogLevel: getenv("CHATSTATE_LOG_LEVEL"),
		MongoURI: getenv("MONGODB_URI"), MongoDatabase: getenv("MONGODB_DATABASE"), DataDir: getenv("CHATSTATE_DATA_DIR"),
		FailAfterPersist: getenv("CHATSTATE_TEST_FAIL_AFTER_PERSIST"), HoldAckUntilDrain: getenv("CHATSTATE_TEST_HOLD_ACK_UNTIL_DRAIN")}
	if c.DataDir == "" {
		c.DataDir = "data"
	}
	if c.Addr == "" {
		c.Addr = ":8080"
	}
	if c.NodeID == "" {
		host, _ := os.Hostname()
		c.NodeID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if s := getenv("CHATSTATE_JWT_SECRET"); s != "" {
		c.JWTSecret = []byte(s)
	}
	if path := getenv("CHATSTATE_JWT_PUBLIC_KEY_FILE"); path != "" {
		pem, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("CHATSTATE_JWT_PUBLIC_KEY_FILE: %w", err)
		}
		if c.JWTPublicKey, err = jwt.ParseRSAPublicKeyFromPEM(pem); err != nil {
			return c, fmt.Errorf("CHATSTATE_JWT_PUBLIC_KEY_FILE: %w", err)
		}
	}
	var err error
	if c.RateLimit, err = envInt(getenv, "CHATSTATE_MESSAGE_RATE_LIMIT"); err != nil {
		return c, err
	}
	for name, dst := range map[string]*time.Duration{
		"CHATSTATE_MESSAGE_RATE_WINDOW":     &c.RateWindow,
		"CHATSTATE_DEVICE_TTL":              &c.DeviceTTL,
		"CHATSTATE_TYPING_TTL":              &c.TypingTTL,
		"CHATSTATE_NODE_TIMEOUT":            &c.NodeTimeout,
		"CHATSTATE_HEARTBEAT_INTERVAL":      &c.HeartbeatInterval,
		"CHATSTATE_PRESENCE_SWEEP_INTERVAL": &c.PresenceSweep,
		"CHATSTATE_PING_INTERVAL":           &c.PingInterval,
		"CHATSTATE_PING_TIMEOUT":            &c.PingTimeout,
	} {
		if *dst, err = envDuration(getenv, name); err != nil {
			return c, err
		}
	}
	if c.DrainWindow, err = drainWindow(getenv); err != nil {
		return c, err
	}
	for _, o := range strings.Split(getenv("CHATSTATE_ALLOWED_ORIGINS"), ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.AllowedOrigins = append(c.AllowedOrigins, o)
		}
	}
	if c.Redis, err = redisconn.FromEnv(getenv); err != nil {
		return c, err
	}
	return c, nil
}

func envInt(getenv func(string) string, name string) (int, error) {
	v := getenv(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s=%q: want a non-negative integer", name, v)
	}
	return n, nil
}

// maxDrainWindow bounds CHATSTATE_DRAIN_WINDOW: orchestrators kill a node
// that takes much longer to stop (Kubernetes' default grace is 30 s).
const maxDrainWindow = 10 * time.Minute

func drainWindow(getenv func(string) string) (time.Duration, error) {
	const name = "CHATSTATE_DRAIN_WINDOW"
	d, err := envDuration(getenv, name)
	switch v := getenv(name); {
	case err != nil:
		return 0, err
	case v == "":
		return 10 * time.Second, nil
	case d <= 0 || d > maxDrainWindow:
		return 0, fmt.Errorf("%s=%q: want a duration above 0 and at most %v", name, v, maxDrainWindow)
	}
	return d, nil
}

// envDuration accepts Go durations ("60s", "1m30s") and plain seconds ("60").
func envDuration(getenv func(string) string, name string) (time.Duration, error) {
	v := getenv(name)
	if v == "" {
		return 0, nil
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s=%q: want a duration such as 60s", name, v)
	}
	return d, nil
}
