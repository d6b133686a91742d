package main

import (
	"crypto/rsa"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/cache"
	"github.com/chatstate/chatstate/gateway"
	"github.com/chatstate/chatstate/internal/redisconn"
	"github.com/chatstate/chatstate/presence"
	"github.com/chatstate/chatstate/push"
	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/rueidis"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
)

// config is everything `chatstate serve` reads from the environment. Every
// variable is in the settings table below and documented in README.md;
// loadConfig validates all of them before anything starts, so a bad value
// fails the start instead of every later call.
type config struct {
	Addr           string         // CHATSTATE_ADDR, default 127.0.0.1:8080 in development mode, else :8080
	NodeID         string         // CHATSTATE_NODE_ID, default host name + pid
	JWTSecret      []byte         // CHATSTATE_JWT_SECRET
	JWTPublicKey   *rsa.PublicKey // CHATSTATE_JWT_PUBLIC_KEY_FILE (RS256)
	JWTRequireExp  bool           // CHATSTATE_JWT_REQUIRE_EXP, default true
	JWTIssuer      string         // CHATSTATE_JWT_ISSUER: required iss when set
	JWTAudience    string         // CHATSTATE_JWT_AUDIENCE: required aud when set
	APIKey         string         // CHATSTATE_API_KEY
	RateLimit      int            // CHATSTATE_MESSAGE_RATE_LIMIT, default 10
	RateWindow     time.Duration  // CHATSTATE_MESSAGE_RATE_WINDOW, default 60s
	AllowedOrigins []string       // CHATSTATE_ALLOWED_ORIGINS, comma separated; empty = any
	LogLevel       string         // CHATSTATE_LOG_LEVEL: debug, info (default), warn, error
	DrainWindow    time.Duration  // CHATSTATE_DRAIN_WINDOW, default 10s: sockets are closed across it on SIGTERM
	// TrustedProxies is CHATSTATE_TRUSTED_PROXIES: the peers whose
	// X-Forwarded-For names the client (gateway.Config); empty trusts none.
	TrustedProxies []netip.Prefix
	// SessionActivity is CHATSTATE_SESSION_ACTIVITY_INTERVAL: zero means
	// the gateway's 60s.
	SessionActivity time.Duration
	// Demo is CHATSTATE_DEMO: serve the demo chat at / (package web). Unset
	// means on in development mode and off in production.
	Demo    bool
	demoSet bool

	// Tuning, mostly for tests and demos; zero means the services' defaults.
	DeviceTTL         time.Duration // CHATSTATE_DEVICE_TTL (5m)
	TypingTTL         time.Duration // CHATSTATE_TYPING_TTL (10s)
	NodeTimeout       time.Duration // CHATSTATE_NODE_TIMEOUT (30s)
	HeartbeatInterval time.Duration // CHATSTATE_HEARTBEAT_INTERVAL (5s)
	PresenceSweep     time.Duration // CHATSTATE_PRESENCE_SWEEP_INTERVAL (15s)
	SessionSweep      time.Duration // CHATSTATE_SESSION_SWEEP_INTERVAL (5m)
	NotificationSweep time.Duration // CHATSTATE_NOTIFICATION_INTERVAL (30s)
	TypingSweep       time.Duration // CHATSTATE_TYPING_SWEEP_INTERVAL (1m)
	PingInterval      time.Duration // CHATSTATE_PING_INTERVAL (25s)
	PingTimeout       time.Duration // CHATSTATE_PING_TIMEOUT (20s)

	// Store is CHATSTATE_STORE: "mongodb", "sqlite", or empty for MongoDB
	// when MONGODB_URI is set, else SQLite (refused by openStore while
	// other nodes share the Redis).
	Store         string
	MongoURI      string // MONGODB_URI
	MongoDatabase string // MONGODB_DATABASE, default the URI's database, else "chatstate"
	DataDir       string // CHATSTATE_DATA_DIR, default ./data (SQLite file chatstate.db)
	// SQLiteSync is CHATSTATE_SQLITE_SYNC: "full" (default: an acked
	// message survives a power loss) or "normal" (it survives a killed
	// process, not a power loss; commits without an fsync each).
	SQLiteSync string
	// FailAfterPersist is a fault-injection hook for the crash tests: a
	// message with exactly this content kills the process (SIGKILL) right
	// after it is persisted, before it is cached, fanned out or acked.
	FailAfterPersist string // CHATSTATE_TEST_FAIL_AFTER_PERSIST
	// HoldPersist holds a message with exactly this content before it is
	// stored, its seq reserved, until the file release appears in TestDir:
	// the delivery tests' way to keep one seq unsettled. TestDir also
	// receives a file per stored message (see holdpoint, storedpoint).
	HoldPersist string // CHATSTATE_TEST_HOLD_PERSIST
	TestDir     string // CHATSTATE_TEST_DIR
	// SettleTimeout is how long a reserved seq may stay unsettled before
	// another send skips it (docs/delivery.md); zero means 3s.
	SettleTimeout time.Duration // CHATSTATE_SETTLE_TIMEOUT
	// HoldAckUntilDrain: the ack of a message with exactly this content
	// waits until the drain closes its socket (gateway.Config).
	HoldAckUntilDrain string // CHATSTATE_TEST_HOLD_ACK_UNTIL_DRAIN

	Redis redisconn.Config
	// Push is every push provider setting (push.FromEnv validates them).
	Push push.Config
	// PushMaxAttempts and PushLease tune the push queue: sends per job
	// before it is dead-lettered (zero means 8), and how long a claimed job
	// stays with its worker before another node takes it (zero means 30s).
	PushMaxAttempts int           // CHATSTATE_PUSH_MAX_ATTEMPTS
	PushLease       time.Duration // CHATSTATE_PUSH_LEASE

	// Dev is the embedded single-node development mode (no REDIS_* address
	// set). DevJWTSecret and DevAPIKey say which development secrets it
	// filled in.
	Dev, DevJWTSecret, DevAPIKey bool
}

// Store modes of CHATSTATE_STORE.
const (
	storeMongoDB = "mongodb"
	storeSQLite  = "sqlite"
)

// Development defaults of the embedded mode only, and only on a loopback
// address: they are public.
const (
	devJWTSecret = "chatstate-development-secret"
	devAPIKey    = "dev-api-key"
	devAddr      = "127.0.0.1:8080"
	prodAddr     = ":8080"
)

// setting is one environment variable. set parses a non-empty value into c
// or says what is allowed ("want ..."); the caller names the variable.
type setting struct {
	name string
	// secret values are never printed; url values are printed without
	// their password.
	secret, url bool
	set         func(c *config, v string) error
}

// Bounds of the tuning durations: what the services work with (the
// presence scripts take milliseconds, the gateway refreshes devices every
// DEVICE_TTL/3, clients add ping interval and timeout in 32-bit timers).
const (
	minDeviceTTL, maxDeviceTTL     = time.Second, 24 * time.Hour
	minTypingTTL, maxTypingTTL     = 100 * time.Millisecond, time.Hour
	minNodeTimeout, maxNodeTimeout = time.Second, time.Hour
	minHeartbeat, maxHeartbeat     = 100 * time.Millisecond, 10 * time.Minute
	minSweep, maxSweep             = 100 * time.Millisecond, time.Hour
	minPing, maxPing               = 100 * time.Millisecond, 10 * time.Minute
	minSettle, maxSettle           = 100 * time.Millisecond, 5 * time.Minute
	// Orchestrators kill a node that takes longer than their grace period.
	minDrain, maxDrain = time.Millisecond, 10 * time.Minute
	maxClaimLen        = 1024
	// maxFailContent: longer content is refused at send, so it could
	// never trigger the crash hook.
	maxFailContent = 16 << 10
)

var settings = []setting{
	{name: "CHATSTATE_ADDR", set: func(c *config, v string) error {
		_, port, err := net.SplitHostPort(v)
		if n, perr := strconv.Atoi(port); err != nil || perr != nil || n < 0 || n > 65535 {
			return errors.New("want host:port with a port from 0 to 65535, e.g. 127.0.0.1:8080 or :8080")
		}
		c.Addr = v
		return nil
	}},
	{name: "CHATSTATE_NODE_ID", set: func(c *config, v string) error {
		if len(v) > 64 || chatstate.ValidateID("node", v) != nil {
			return errors.New("want 1 to 64 letters, digits, '.', '_', '@' or '-'")
		}
		c.NodeID = v
		return nil
	}},
	{name: "CHATSTATE_JWT_SECRET", secret: true, set: func(c *config, v string) error {
		c.JWTSecret = []byte(v)
		return nil
	}},
	{name: "CHATSTATE_JWT_PUBLIC_KEY_FILE", set: func(c *config, v string) error {
		pem, err := os.ReadFile(v)
		if err == nil {
			c.JWTPublicKey, err = jwt.ParseRSAPublicKeyFromPEM(pem)
		}
		if err != nil {
			return fmt.Errorf("want a readable PEM file with an RSA public key (%v)", err)
		}
		return nil
	}},
	{name: "CHATSTATE_JWT_REQUIRE_EXP", set: func(c *config, v string) (err error) {
		c.JWTRequireExp, err = parseBool(v)
		return err
	}},
	{name: "CHATSTATE_JWT_ISSUER", set: func(c *config, v string) (err error) {
		c.JWTIssuer, err = claimValue(v)
		return err
	}},
	{name: "CHATSTATE_JWT_AUDIENCE", set: func(c *config, v string) (err error) {
		c.JWTAudience, err = claimValue(v)
		return err
	}},
	{name: "CHATSTATE_API_KEY", secret: true, set: func(c *config, v string) error {
		for i := 0; i < len(v); i++ {
			if v[i] <= ' ' || v[i] >= 0x7f {
				return errors.New("want printable ASCII without spaces (it is sent as Authorization: Bearer <key>)")
			}
		}
		c.APIKey = v
		return nil
	}},
	{name: "CHATSTATE_MESSAGE_RATE_LIMIT", set: func(c *config, v string) (err error) {
		c.RateLimit, err = parseInt(v, 1, cache.MaxRateLimit)
		return err
	}},
	{name: "CHATSTATE_MESSAGE_RATE_WINDOW", set: durationSetting(func(c *config) *time.Duration { return &c.RateWindow }, time.Microsecond, cache.MaxRateLimitWindow)},
	{name: "CHATSTATE_ALLOWED_ORIGINS", set: func(c *config, v string) error {
		for _, o := range splitList(v) {
			u, err := url.Parse(o)
			if err != nil || u.Scheme == "" || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
				return errors.New("want comma-separated origins such as https://app.example.com (unset allows any)")
			}
			c.AllowedOrigins = append(c.AllowedOrigins, strings.TrimSuffix(o, "/"))
		}
		return nil
	}},
	{name: "CHATSTATE_TRUSTED_PROXIES", set: func(c *config, v string) (err error) {
		c.TrustedProxies, err = gateway.ParseTrustedProxies(v)
		return err
	}},
	// At most 10m: a connected device's session (1h) is extended at least
	// every third of its TTL plus this interval.
	{name: "CHATSTATE_SESSION_ACTIVITY_INTERVAL", set: durationSetting(func(c *config) *time.Duration { return &c.SessionActivity }, time.Second, 10*time.Minute)},
	{name: "CHATSTATE_DEMO", set: func(c *config, v string) (err error) {
		c.Demo, err = parseBool(v)
		c.demoSet = err == nil
		return err
	}},
	{name: "CHATSTATE_KEY_PREFIX", set: func(c *config, v string) error {
		// Redis hashes the first {...} of a key: braces in the prefix would
		// move keys off their user's or conversation's slot.
		if strings.ContainsAny(v, "{} \t\r\n") || len(v) > 128 {
			return errors.New("want at most 128 bytes without { } or spaces")
		}
		c.Redis.KeyPrefix = v
		return nil
	}},
	{name: "CHATSTATE_LOG_LEVEL", set: func(c *config, v string) error {
		switch l := strings.ToLower(v); l {
		case "debug", "info", "warn", "error":
			c.LogLevel = l
			return nil
		}
		return errors.New("want debug, info, warn or error")
	}},
	{name: "REDIS_HOST", set: func(c *config, v string) error {
		if net.ParseIP(v) == nil && !isHostName(v) {
			return errors.New("want a host name or IP address (the port goes in REDIS_PORT)")
		}
		c.Redis.Host = v
		return nil
	}},
	{name: "REDIS_PORT", set: func(c *config, v string) error {
		if _, err := parseInt(v, 1, 65535); err != nil {
			return err
		}
		c.Redis.Port = v
		return nil
	}},
	{name: "REDIS_PASSWORD", secret: true, set: func(c *config, v string) error {
		c.Redis.Password = v
		return nil
	}},
	{name: "REDIS_URL", url: true, set: func(c *config, v string) error {
		if _, err := rueidis.ParseURL(v); err != nil {
			return errors.New("want redis://[:password@]host:port[/db] (rediss:// for TLS)")
		}
		c.Redis.URL = v
		return nil
	}},
	{name: "REDIS_CLUSTER_ADDRS", set: func(c *config, v string) (err error) {
		c.Redis.ClusterAddrs, err = hostPorts(v)
		return err
	}},
	{name: "REDIS_SENTINEL_ADDRS", set: func(c *config, v string) (err error) {
		c.Redis.SentinelAddrs, err = hostPorts(v)
		return err
	}},
	{name: "REDIS_SENTINEL_MASTER", set: func(c *config, v string) error {
		if strings.ContainsAny(v, " \t\r\n") {
			return errors.New("want the master name of the Sentinel configuration, without spaces")
		}
		c.Redis.SentinelMaster = v
		return nil
	}},
	{name: "REDIS_TLS", set: func(c *config, v string) (err error) {
		c.Redis.TLS, err = parseBool(v)
		return err
	}},
	{name: "CHATSTATE_STORE", set: func(c *config, v string) error {
		if v != storeMongoDB && v != storeSQLite {
			return errors.New("want mongodb or sqlite")
		}
		c.Store = v
		return nil
	}},
	{name: "MONGODB_URI", url: true, set: func(c *config, v string) error {
		if _, err := connstring.ParseAndValidate(v); err != nil {
			return errors.New("want a mongodb:// or mongodb+srv:// connection string")
		}
		c.MongoURI = v
		return nil
	}},
	{name: "MONGODB_DATABASE", set: func(c *config, v string) error {
		if len(v) > 63 || strings.ContainsAny(v, "/\\. \"$*<>:|?\x00") {
			return errors.New(`want a MongoDB database name: at most 63 bytes, none of / \ . " $ * < > : | ? or space`)
		}
		c.MongoDatabase = v
		return nil
	}},
	{name: "CHATSTATE_DATA_DIR", set: func(c *config, v string) error {
		if fi, err := os.Stat(v); err == nil && !fi.IsDir() {
			return errors.New("want a directory (it exists and is not one)")
		}
		c.DataDir = v
		return nil
	}},
	{name: "CHATSTATE_SQLITE_SYNC", set: func(c *config, v string) error {
		if v != "full" && v != "normal" {
			return errors.New("want full or normal")
		}
		c.SQLiteSync = v
		return nil
	}},
	{name: "CHATSTATE_DEVICE_TTL", set: durationSetting(func(c *config) *time.Duration { return &c.DeviceTTL }, minDeviceTTL, maxDeviceTTL)},
	{name: "CHATSTATE_TYPING_TTL", set: durationSetting(func(c *config) *time.Duration { return &c.TypingTTL }, minTypingTTL, maxTypingTTL)},
	{name: "CHATSTATE_NODE_TIMEOUT", set: durationSetting(func(c *config) *time.Duration { return &c.NodeTimeout }, minNodeTimeout, maxNodeTimeout)},
	{name: "CHATSTATE_HEARTBEAT_INTERVAL", set: durationSetting(func(c *config) *time.Duration { return &c.HeartbeatInterval }, minHeartbeat, maxHeartbeat)},
	{name: "CHATSTATE_PRESENCE_SWEEP_INTERVAL", set: durationSetting(func(c *config) *time.Duration { return &c.PresenceSweep }, minSweep, maxSweep)},
	{name: "CHATSTATE_SESSION_SWEEP_INTERVAL", set: durationSetting(func(c *config) *time.Duration { return &c.SessionSweep }, minSweep, maxSweep)},
	{name: "CHATSTATE_NOTIFICATION_INTERVAL", set: durationSetting(func(c *config) *time.Duration { return &c.NotificationSweep }, minSweep, maxSweep)},
	{name: "CHATSTATE_TYPING_SWEEP_INTERVAL", set: durationSetting(func(c *config) *time.Duration { return &c.TypingSweep }, minSweep, maxSweep)},
	{name: "CHATSTATE_PING_INTERVAL", set: durationSetting(func(c *config) *time.Duration { return &c.PingInterval }, minPing, maxPing)},
	{name: "CHATSTATE_PING_TIMEOUT", set: durationSetting(func(c *config) *time.Duration { return &c.PingTimeout }, minPing, maxPing)},
	{name: "CHATSTATE_TEST_FAIL_AFTER_PERSIST", set: func(c *config, v string) error {
		if len(v) > maxFailContent {
			return fmt.Errorf("want message content of at most %d bytes", maxFailContent)
		}
		c.FailAfterPersist = v
		return nil
	}},
	{name: "CHATSTATE_DRAIN_WINDOW", set: durationSetting(func(c *config) *time.Duration { return &c.DrainWindow }, minDrain, maxDrain)},
	{name: "CHATSTATE_TEST_HOLD_ACK_UNTIL_DRAIN", set: func(c *config, v string) error {
		if len(v) > maxFailContent {
			return fmt.Errorf("want message content of at most %d bytes", maxFailContent)
		}
		c.HoldAckUntilDrain = v
		return nil
	}},
	{name: "CHATSTATE_PUSH_MAX_ATTEMPTS", set: func(c *config, v string) (err error) {
		c.PushMaxAttempts, err = parseInt(v, 1, 100)
		return err
	}},
	{name: "CHATSTATE_PUSH_LEASE", set: durationSetting(func(c *config) *time.Duration { return &c.PushLease }, time.Second, time.Hour)},
	{name: "CHATSTATE_SETTLE_TIMEOUT", set: durationSetting(func(c *config) *time.Duration { return &c.SettleTimeout }, minSettle, maxSettle)},
	{name: "CHATSTATE_TEST_HOLD_PERSIST", set: func(c *config, v string) error {
		if len(v) > maxFailContent {
			return fmt.Errorf("want message content of at most %d bytes", maxFailContent)
		}
		c.HoldPersist = v
		return nil
	}},
	{name: "CHATSTATE_TEST_DIR", set: func(c *config, v string) error {
		if fi, err := os.Stat(v); err != nil || !fi.IsDir() {
			return errors.New("want an existing directory")
		}
		c.TestDir = v
		return nil
	}},
}

// loadConfig reads and validates every setting. The error is one line
// naming the variable, its value and what is allowed.
func loadConfig(getenv func(string) string) (config, error) {
	c := config{JWTRequireExp: true, DataDir: "data", DrainWindow: 10 * time.Second}
	for _, s := range settings {
		v := getenv(s.name)
		if v == "" {
			continue
		}
		if err := s.set(&c, v); err != nil {
			return c, fmt.Errorf("%s=%s: %w", s.name, s.show(v), err)
		}
	}
	if err := c.check(getenv); err != nil {
		return c, err
	}
	var err error
	if c.Push, err = push.FromEnv(getenv); err != nil {
		return c, err
	}
	timeout := c.Push.Timeout
	if timeout == 0 {
		timeout = push.DefaultTimeout
	}
	if c.PushLease > 0 && c.PushLease <= timeout {
		return c, fmt.Errorf("CHATSTATE_PUSH_LEASE=%s: want more than CHATSTATE_PUSH_TIMEOUT (%s), or a slow send loses its lease", c.PushLease, timeout)
	}
	if c.NodeID == "" {
		host, _ := os.Hostname()
		c.NodeID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	return c, nil
}

// check validates what depends on more than one variable and fills in the
// development defaults.
func (c *config) check(getenv func(string) string) error {
	c.Dev = !c.Redis.Configured()
	if c.Dev {
		for _, name := range []string{"REDIS_PASSWORD", "REDIS_SENTINEL_MASTER", "REDIS_TLS"} {
			if v := getenv(name); v != "" {
				return fmt.Errorf("%s=%s: set REDIS_HOST, REDIS_URL, REDIS_CLUSTER_ADDRS or REDIS_SENTINEL_ADDRS too; without an address the server runs the embedded development Redis", name, settingNamed(name).show(v))
			}
		}
	}
	if len(c.Redis.SentinelAddrs) > 0 && c.Redis.SentinelMaster == "" {
		return fmt.Errorf("REDIS_SENTINEL_ADDRS=%q: set REDIS_SENTINEL_MASTER to the monitored master's name", getenv("REDIS_SENTINEL_ADDRS"))
	}
	switch {
	case c.Store == storeMongoDB && c.MongoURI == "":
		return errors.New(`CHATSTATE_STORE="mongodb": set MONGODB_URI`)
	case c.Store == storeSQLite && c.MongoURI != "":
		return errors.New(`CHATSTATE_STORE="sqlite": unset MONGODB_URI, or set CHATSTATE_STORE=mongodb`)
	case c.MongoDatabase != "" && c.MongoURI == "":
		return fmt.Errorf("MONGODB_DATABASE=%q: set MONGODB_URI too (the SQLite store has no databases)", c.MongoDatabase)
	}
	p := presence.Config{NodeTimeout: c.NodeTimeout, HeartbeatInterval: c.HeartbeatInterval}.Defaults()
	if p.HeartbeatInterval > p.NodeTimeout/2 {
		// Two missed heartbeats in a row must not declare a node dead.
		return fmt.Errorf("CHATSTATE_HEARTBEAT_INTERVAL=%q: want at most half of CHATSTATE_NODE_TIMEOUT (%s)", fmtDuration(p.HeartbeatInterval), fmtDuration(p.NodeTimeout))
	}

	if !c.demoSet {
		c.Demo = c.Dev
	}
	if c.Addr == "" {
		c.Addr = prodAddr
		if c.Dev {
			c.Addr = devAddr
		}
	}
	hasJWT := len(c.JWTSecret) > 0 || c.JWTPublicKey != nil
	if c.Dev {
		if !hasJWT {
			c.JWTSecret, c.DevJWTSecret, hasJWT = []byte(devJWTSecret), true, true
		}
		if c.APIKey == "" {
			c.APIKey, c.DevAPIKey = devAPIKey, true
		}
	}
	if !hasJWT {
		return errors.New("CHATSTATE_JWT_SECRET (or CHATSTATE_JWT_PUBLIC_KEY_FILE) is required with an external Redis")
	}
	if !isLoopback(c.Addr) {
		var missing []string
		if string(c.JWTSecret) == devJWTSecret {
			missing = append(missing, "CHATSTATE_JWT_SECRET (or CHATSTATE_JWT_PUBLIC_KEY_FILE)")
		}
		if c.APIKey == devAPIKey {
			missing = append(missing, "CHATSTATE_API_KEY")
		}
		if len(missing) > 0 {
			return fmt.Errorf("CHATSTATE_ADDR=%q is not a loopback address and the public development secrets would be used: set %s", c.Addr, strings.Join(missing, " and "))
		}
	}
	return nil
}

// show is how a value appears in an error.
func (s setting) show(v string) string {
	switch {
	case s.secret:
		return "(hidden)"
	case s.url:
		u, err := url.Parse(v)
		if err != nil {
			return "(not shown: it may hold a password)"
		}
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		return strconv.Quote(u.String())
	}
	return strconv.Quote(v)
}

func settingNamed(name string) setting {
	for _, s := range settings {
		if s.name == name {
			return s
		}
	}
	panic("no setting " + name)
}
