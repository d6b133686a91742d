package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chatstate/chatstate/push"
)

// configCase sets variable (and extra) to value; want is the whole error
// line, or "" when the value is valid, in which case ok checks it arrived.
type configCase struct {
	variable, value string
	extra           map[string]string
	want            string
	ok              func(config) bool
}

func configCases(t *testing.T) []configCase {
	dir := t.TempDir()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	pemPath := filepath.Join(dir, "jwt.pem")
	os.WriteFile(pemPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600)
	notDir := filepath.Join(dir, "file")
	os.WriteFile(notDir, nil, 0o600)
	redis := map[string]string{"REDIS_HOST": "redis.internal", "CHATSTATE_JWT_SECRET": "s3cret"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	mongo := with("MONGODB_URI", "mongodb://localhost:27017")
	secrets := with("CHATSTATE_JWT_SECRET", "s3cret", "CHATSTATE_API_KEY", "k3y")
	long := strings.Repeat("x", 16<<10+1)
	const durWant = ": want a duration from "

	return []configCase{
		{variable: "CHATSTATE_ADDR", value: "0.0.0.0:9000", extra: secrets, ok: func(c config) bool { return c.Addr == "0.0.0.0:9000" }},
		{variable: "CHATSTATE_ADDR", value: "localhost:0", ok: func(c config) bool { return c.Addr == "localhost:0" && c.DevJWTSecret }},
		{variable: "CHATSTATE_ADDR", value: "8080", want: `CHATSTATE_ADDR="8080": want host:port with a port from 0 to 65535, e.g. 127.0.0.1:8080 or :8080`},
		{variable: "CHATSTATE_ADDR", value: ":8080", want: `CHATSTATE_ADDR=":8080" is not a loopback address and the public development secrets would be used: set CHATSTATE_JWT_SECRET (or CHATSTATE_JWT_PUBLIC_KEY_FILE) and CHATSTATE_API_KEY`},
		{variable: "CHATSTATE_ADDR", value: "0.0.0.0:8080", extra: with("CHATSTATE_JWT_SECRET", "s3cret"), want: `CHATSTATE_ADDR="0.0.0.0:8080" is not a loopback address and the public development secrets would be used: set CHATSTATE_API_KEY`},

		{variable: "CHATSTATE_NODE_ID", value: "node-1", ok: func(c config) bool { return c.NodeID == "node-1" }},
		{variable: "CHATSTATE_NODE_ID", value: "node 1", want: `CHATSTATE_NODE_ID="node 1": want 1 to 64 letters, digits, '.', '_', '@' or '-'`},

		{variable: "CHATSTATE_JWT_SECRET", value: "s3cret", extra: with("REDIS_HOST", "r"), ok: func(c config) bool { return string(c.JWTSecret) == "s3cret" && !c.DevJWTSecret }},
		{variable: "CHATSTATE_JWT_SECRET", value: devJWTSecret, extra: with("CHATSTATE_ADDR", ":8080", "CHATSTATE_API_KEY", "k3y"), want: `CHATSTATE_ADDR=":8080" is not a loopback address and the public development secrets would be used: set CHATSTATE_JWT_SECRET (or CHATSTATE_JWT_PUBLIC_KEY_FILE)`},
		{variable: "CHATSTATE_JWT_SECRET", value: "", extra: with("REDIS_HOST", "r"), want: `CHATSTATE_JWT_SECRET (or CHATSTATE_JWT_PUBLIC_KEY_FILE) is required with an external Redis`},

		{variable: "CHATSTATE_JWT_PUBLIC_KEY_FILE", value: pemPath, extra: with("REDIS_HOST", "r"), ok: func(c config) bool { return c.JWTPublicKey != nil && c.JWTPublicKey.N.Cmp(key.N) == 0 }},
		{variable: "CHATSTATE_JWT_PUBLIC_KEY_FILE", value: "/nonexistent/k.pem", want: `CHATSTATE_JWT_PUBLIC_KEY_FILE="/nonexistent/k.pem": want a readable PEM file with an RSA public key (open /nonexistent/k.pem: no such file or directory)`},
		{variable: "CHATSTATE_JWT_PUBLIC_KEY_FILE", value: notDir, want: `CHATSTATE_JWT_PUBLIC_KEY_FILE="` + notDir + `": want a readable PEM file with an RSA public key (invalid key: Key must be a PEM encoded PKCS1 or PKCS8 key)`},

		{variable: "CHATSTATE_JWT_REQUIRE_EXP", value: "", ok: func(c config) bool { return c.JWTRequireExp }},
		{variable: "CHATSTATE_JWT_REQUIRE_EXP", value: "false", ok: func(c config) bool { return !c.JWTRequireExp }},
		{variable: "CHATSTATE_JWT_REQUIRE_EXP", value: "sometimes", want: `CHATSTATE_JWT_REQUIRE_EXP="sometimes": want true or false`},

		{variable: "CHATSTATE_JWT_ISSUER", value: "https://id.example", ok: func(c config) bool { return c.JWTIssuer == "https://id.example" }},
		{variable: "CHATSTATE_JWT_ISSUER", value: "a\nb", want: `CHATSTATE_JWT_ISSUER="a\nb": want at most 1024 bytes without control characters`},
		{variable: "CHATSTATE_JWT_AUDIENCE", value: "chat", ok: func(c config) bool { return c.JWTAudience == "chat" }},
		{variable: "CHATSTATE_JWT_AUDIENCE", value: strings.Repeat("a", 1025), want: `CHATSTATE_JWT_AUDIENCE="` + strings.Repeat("a", 1025) + `": want at most 1024 bytes without control characters`},

		{variable: "CHATSTATE_API_KEY", value: "k3y", ok: func(c config) bool { return c.APIKey == "k3y" && !c.DevAPIKey }},
		{variable: "CHATSTATE_API_KEY", value: "my key", want: `CHATSTATE_API_KEY=(hidden): want printable ASCII without spaces (it is sent as Authorization: Bearer <key>)`},
		{variable: "CHATSTATE_API_KEY", value: devAPIKey, extra: with("CHATSTATE_ADDR", "[::]:8080", "CHATSTATE_JWT_SECRET", "s3cret"), want: `CHATSTATE_ADDR="[::]:8080" is not a loopback address and the public development secrets would be used: set CHATSTATE_API_KEY`},

		{variable: "CHATSTATE_MESSAGE_RATE_LIMIT", value: "100000", ok: func(c config) bool { return c.RateLimit == 100000 }},
		{variable: "CHATSTATE_MESSAGE_RATE_LIMIT", value: "1000000", want: `CHATSTATE_MESSAGE_RATE_LIMIT="1000000": want an integer from 1 to 100000`},
		{variable: "CHATSTATE_MESSAGE_RATE_LIMIT", value: "0", want: `CHATSTATE_MESSAGE_RATE_LIMIT="0": want an integer from 1 to 100000`},
		{variable: "CHATSTATE_MESSAGE_RATE_WINDOW", value: "90", ok: func(c config) bool { return c.RateWindow == 90*time.Second }},
		{variable: "CHATSTATE_MESSAGE_RATE_WINDOW", value: "1m30s", ok: func(c config) bool { return c.RateWindow == 90*time.Second }},
		{variable: "CHATSTATE_MESSAGE_RATE_WINDOW", value: "800h", want: `CHATSTATE_MESSAGE_RATE_WINDOW="800h"` + durWant + `1µs to 744h, such as 60s or 1m30s`},

		{variable: "CHATSTATE_ALLOWED_ORIGINS", value: "https://a.example, http://localhost:3000/", ok: func(c config) bool {
			return slices.Equal(c.AllowedOrigins, []string{"https://a.example", "http://localhost:3000"})
		}},
		{variable: "CHATSTATE_ALLOWED_ORIGINS", value: "*", want: `CHATSTATE_ALLOWED_ORIGINS="*": want comma-separated origins such as https://app.example.com (unset allows any)`},

		{variable: "CHATSTATE_DEMO", value: "1", extra: redis, ok: func(c config) bool { return c.Demo && !c.Dev }},
		{variable: "CHATSTATE_DEMO", value: "false", ok: func(c config) bool { return !c.Demo && c.Dev }},
		{variable: "CHATSTATE_DEMO", value: "on", want: `CHATSTATE_DEMO="on": want true or false`},

		{variable: "CHATSTATE_KEY_PREFIX", value: "app:", ok: func(c config) bool { return c.Redis.KeyPrefix == "app:" }},
		{variable: "CHATSTATE_KEY_PREFIX", value: "{app}:", want: `CHATSTATE_KEY_PREFIX="{app}:": want at most 128 bytes without { } or spaces`},

		{variable: "CHATSTATE_LOG_LEVEL", value: "WARN", ok: func(c config) bool { return c.LogLevel == "warn" }},
		{variable: "CHATSTATE_LOG_LEVEL", value: "verbose", want: `CHATSTATE_LOG_LEVEL="verbose": want debug, info, warn or error`},

		{variable: "REDIS_HOST", value: "redis.internal", extra: redis, ok: func(c config) bool { return !c.Dev && c.Redis.Host == "redis.internal" && c.Addr == prodAddr }},
		{variable: "REDIS_HOST", value: "redis:6379", want: `REDIS_HOST="redis:6379": want a host name or IP address (the port goes in REDIS_PORT)`},
		{variable: "REDIS_PORT", value: "6380", extra: redis, ok: func(c config) bool { return c.Redis.Port == "6380" }},
		{variable: "REDIS_PORT", value: "70000", want: `REDIS_PORT="70000": want an integer from 1 to 65535`},
		{variable: "REDIS_PASSWORD", value: "pw", extra: redis, ok: func(c config) bool { return c.Redis.Password == "pw" }},
		{variable: "REDIS_PASSWORD", value: "pw", want: `REDIS_PASSWORD=(hidden): set REDIS_HOST, REDIS_URL, REDIS_CLUSTER_ADDRS or REDIS_SENTINEL_ADDRS too; without an address the server runs the embedded development Redis`},
		{variable: "REDIS_URL", value: "redis://:pw@h:7000/2", extra: with("CHATSTATE_JWT_SECRET", "s"), ok: func(c config) bool { return !c.Dev && c.Redis.URL == "redis://:pw@h:7000/2" }},
		{variable: "REDIS_URL", value: "http://:pw@nope", want: `REDIS_URL="http://:xxxxx@nope": want redis://[:password@]host:port[/db] (rediss:// for TLS)`},
		{variable: "REDIS_CLUSTER_ADDRS", value: "a:1, b:2", extra: with("CHATSTATE_JWT_SECRET", "s"), ok: func(c config) bool { return slices.Equal(c.Redis.ClusterAddrs, []string{"a:1", "b:2"}) }},
		{variable: "REDIS_CLUSTER_ADDRS", value: "a,b", want: `REDIS_CLUSTER_ADDRS="a,b": want comma-separated host:port addresses`},
		{variable: "REDIS_SENTINEL_ADDRS", value: "s:26379", extra: with("REDIS_SENTINEL_MASTER", "mymaster", "CHATSTATE_JWT_SECRET", "s"), ok: func(c config) bool {
			return slices.Equal(c.Redis.SentinelAddrs, []string{"s:26379"}) && c.Redis.SentinelMaster == "mymaster"
		}},
		{variable: "REDIS_SENTINEL_ADDRS", value: "s:26379", want: `REDIS_SENTINEL_ADDRS="s:26379": set REDIS_SENTINEL_MASTER to the monitored master's name`},
		{variable: "REDIS_SENTINEL_ADDRS", value: "s", want: `REDIS_SENTINEL_ADDRS="s": want comma-separated host:port addresses`},
		{variable: "REDIS_SENTINEL_MASTER", value: "mymaster", extra: with("REDIS_SENTINEL_ADDRS", "s:1", "CHATSTATE_JWT_SECRET", "s"), ok: func(c config) bool { return c.Redis.SentinelMaster == "mymaster" }},
		{variable: "REDIS_SENTINEL_MASTER", value: "mymaster", want: `REDIS_SENTINEL_MASTER="mymaster": set REDIS_HOST, REDIS_URL, REDIS_CLUSTER_ADDRS or REDIS_SENTINEL_ADDRS too; without an address the server runs the embedded development Redis`},
		{variable: "REDIS_SENTINEL_MASTER", value: "my master", want: `REDIS_SENTINEL_MASTER="my master": want the master name of the Sentinel configuration, without spaces`},
		{variable: "REDIS_TLS", value: "yes", extra: redis, ok: func(c config) bool { return c.Redis.TLS }},
		{variable: "REDIS_TLS", value: "maybe", extra: redis, want: `REDIS_TLS="maybe": want true or false`},
		{variable: "REDIS_TLS", value: "true", want: `REDIS_TLS="true": set REDIS_HOST, REDIS_URL, REDIS_CLUSTER_ADDRS or REDIS_SENTINEL_ADDRS too; without an address the server runs the embedded development Redis`},

		{variable: "CHATSTATE_STORE", value: "sqlite", ok: func(c config) bool { return c.Store == storeSQLite }},
		{variable: "CHATSTATE_STORE", value: "mongodb", extra: mongo, ok: func(c config) bool { return c.Store == storeMongoDB }},
		{variable: "CHATSTATE_STORE", value: "postgres", want: `CHATSTATE_STORE="postgres": want mongodb or sqlite`},
		{variable: "CHATSTATE_STORE", value: "mongodb", want: `CHATSTATE_STORE="mongodb": set MONGODB_URI`},
		{variable: "CHATSTATE_STORE", value: "sqlite", extra: mongo, want: `CHATSTATE_STORE="sqlite": unset MONGODB_URI, or set CHATSTATE_STORE=mongodb`},
		{variable: "MONGODB_URI", value: "mongodb://u:pw@localhost:27017/app", ok: func(c config) bool { return c.MongoURI == "mongodb://u:pw@localhost:27017/app" }},
		{variable: "MONGODB_URI", value: "mysql://u:pw@h/db", want: `MONGODB_URI="mysql://u:xxxxx@h/db": want a mongodb:// or mongodb+srv:// connection string`},
		{variable: "MONGODB_DATABASE", value: "chat", extra: mongo, ok: func(c config) bool { return c.MongoDatabase == "chat" }},
		{variable: "MONGODB_DATABASE", value: "my.db", extra: mongo, want: `MONGODB_DATABASE="my.db": want a MongoDB database name: at most 63 bytes, none of / \ . " $ * < > : | ? or space`},
		{variable: "MONGODB_DATABASE", value: "chat", want: `MONGODB_DATABASE="chat": set MONGODB_URI too (the SQLite store has no databases)`},
		{variable: "CHATSTATE_DATA_DIR", value: dir, ok: func(c config) bool { return c.DataDir == dir }},
		{variable: "CHATSTATE_SQLITE_SYNC", value: "normal", ok: func(c config) bool { return c.SQLiteSync == "normal" }},
		{variable: "CHATSTATE_SQLITE_SYNC", value: "", ok: func(c config) bool { return c.SQLiteSync == "" }},
		{variable: "CHATSTATE_SQLITE_SYNC", value: "off", want: `CHATSTATE_SQLITE_SYNC="off": want full or normal`},
		{variable: "CHATSTATE_DATA_DIR", value: "", ok: func(c config) bool { return c.DataDir == "data" }},
		{variable: "CHATSTATE_DATA_DIR", value: notDir, want: `CHATSTATE_DATA_DIR="` + notDir + `": want a directory (it exists and is not one)`},

		{variable: "CHATSTATE_DEVICE_TTL", value: "10m", ok: func(c config) bool { return c.DeviceTTL == 10*time.Minute }},
		{variable: "CHATSTATE_DEVICE_TTL", value: "0", want: `CHATSTATE_DEVICE_TTL="0"` + durWant + `1s to 24h, such as 60s or 1m30s`},
		{variable: "CHATSTATE_TYPING_TTL", value: "1s", ok: func(c config) bool { return c.TypingTTL == time.Second }},
		{variable: "CHATSTATE_TYPING_TTL", value: "2h", want: `CHATSTATE_TYPING_TTL="2h"` + durWant + `100ms to 1h, such as 60s or 1m30s`},
		{variable: "CHATSTATE_NODE_TIMEOUT", value: "3s", extra: with("CHATSTATE_HEARTBEAT_INTERVAL", "500ms"), ok: func(c config) bool { return c.NodeTimeout == 3*time.Second }},
		{variable: "CHATSTATE_NODE_TIMEOUT", value: "soon", want: `CHATSTATE_NODE_TIMEOUT="soon"` + durWant + `1s to 1h, such as 60s or 1m30s`},
		{variable: "CHATSTATE_NODE_TIMEOUT", value: "3s", want: `CHATSTATE_HEARTBEAT_INTERVAL="5s": want at most half of CHATSTATE_NODE_TIMEOUT (3s)`},
		{variable: "CHATSTATE_HEARTBEAT_INTERVAL", value: "15s", ok: func(c config) bool { return c.HeartbeatInterval == 15*time.Second }},
		{variable: "CHATSTATE_HEARTBEAT_INTERVAL", value: "10ms", want: `CHATSTATE_HEARTBEAT_INTERVAL="10ms"` + durWant + `100ms to 10m, such as 60s or 1m30s`},
		{variable: "CHATSTATE_HEARTBEAT_INTERVAL", value: "20s", want: `CHATSTATE_HEARTBEAT_INTERVAL="20s": want at most half of CHATSTATE_NODE_TIMEOUT (30s)`},
		{variable: "CHATSTATE_PRESENCE_SWEEP_INTERVAL", value: "1s", ok: func(c config) bool { return c.PresenceSweep == time.Second }},
		{variable: "CHATSTATE_PRESENCE_SWEEP_INTERVAL", value: "-1s", want: `CHATSTATE_PRESENCE_SWEEP_INTERVAL="-1s"` + durWant + `100ms to 1h, such as 60s or 1m30s`},
		{variable: "CHATSTATE_SESSION_SWEEP_INTERVAL", value: "10m", ok: func(c config) bool { return c.SessionSweep == 10*time.Minute }},
		{variable: "CHATSTATE_SESSION_SWEEP_INTERVAL", value: "2h", want: `CHATSTATE_SESSION_SWEEP_INTERVAL="2h"` + durWant + `100ms to 1h, such as 60s or 1m30s`},
		{variable: "CHATSTATE_NOTIFICATION_INTERVAL", value: "5", ok: func(c config) bool { return c.NotificationSweep == 5*time.Second }},
		{variable: "CHATSTATE_NOTIFICATION_INTERVAL", value: "10ms", want: `CHATSTATE_NOTIFICATION_INTERVAL="10ms"` + durWant + `100ms to 1h, such as 60s or 1m30s`},
		{variable: "CHATSTATE_TYPING_SWEEP_INTERVAL", value: "30s", ok: func(c config) bool { return c.TypingSweep == 30*time.Second }},
		{variable: "CHATSTATE_TYPING_SWEEP_INTERVAL", value: "often", want: `CHATSTATE_TYPING_SWEEP_INTERVAL="often"` + durWant + `100ms to 1h, such as 60s or 1m30s`},
		{variable: "CHATSTATE_PING_INTERVAL", value: "10s", ok: func(c config) bool { return c.PingInterval == 10*time.Second }},
		{variable: "CHATSTATE_PING_INTERVAL", value: "1h", want: `CHATSTATE_PING_INTERVAL="1h"` + durWant + `100ms to 10m, such as 60s or 1m30s`},
		{variable: "CHATSTATE_PING_TIMEOUT", value: "5s", ok: func(c config) bool { return c.PingTimeout == 5*time.Second }},
		{variable: "CHATSTATE_PING_TIMEOUT", value: "50ms", want: `CHATSTATE_PING_TIMEOUT="50ms"` + durWant + `100ms to 10m, such as 60s or 1m30s`},

		{variable: "CHATSTATE_TEST_FAIL_AFTER_PERSIST", value: "crash", ok: func(c config) bool { return c.FailAfterPersist == "crash" }},
		{variable: "CHATSTATE_TEST_FAIL_AFTER_PERSIST", value: long, want: `CHATSTATE_TEST_FAIL_AFTER_PERSIST="` + long + `": want message content of at most 16384 bytes`},
		{variable: "CHATSTATE_DRAIN_WINDOW", value: "30", ok: func(c config) bool { return c.DrainWindow == 30*time.Second }},
		{variable: "CHATSTATE_DRAIN_WINDOW", value: "11m", want: `CHATSTATE_DRAIN_WINDOW="11m"` + durWant + `1ms to 10m, such as 60s or 1m30s`},
		{variable: "CHATSTATE_TEST_HOLD_ACK_UNTIL_DRAIN", value: "hold", ok: func(c config) bool { return c.HoldAckUntilDrain == "hold" }},
		{variable: "CHATSTATE_TEST_HOLD_ACK_UNTIL_DRAIN", value: long, want: `CHATSTATE_TEST_HOLD_ACK_UNTIL_DRAIN="` + long + `": want message content of at most 16384 bytes`},
		{variable: "CHATSTATE_PUSH_MAX_ATTEMPTS", value: "3", ok: func(c config) bool { return c.PushMaxAttempts == 3 }},
		{variable: "CHATSTATE_PUSH_MAX_ATTEMPTS", value: "0", want: `CHATSTATE_PUSH_MAX_ATTEMPTS="0": want an integer from 1 to 100`},
		{variable: "CHATSTATE_PUSH_LEASE", value: "10s", ok: func(c config) bool { return c.PushLease == 10*time.Second }},
		{variable: "CHATSTATE_PUSH_LEASE", value: "2h", want: `CHATSTATE_PUSH_LEASE="2h"` + durWant + `1s to 1h, such as 60s or 1m30s`},
		{variable: "CHATSTATE_TRUSTED_PROXIES", value: "10.0.0.0/8, 192.168.1.10,fd00::/8", ok: func(c config) bool {
			return len(c.TrustedProxies) == 3 && c.TrustedProxies[1].String() == "192.168.1.10/32"
		}},
		{variable: "CHATSTATE_TRUSTED_PROXIES", value: "10.0.0.0/33", want: `CHATSTATE_TRUSTED_PROXIES="10.0.0.0/33": want comma-separated IP addresses or CIDRs such as 10.0.0.0/8, 192.168.1.10 or fd00::/8`},
		{variable: "CHATSTATE_SESSION_ACTIVITY_INTERVAL", value: "30s", ok: func(c config) bool { return c.SessionActivity == 30*time.Second }},
		{variable: "CHATSTATE_SESSION_ACTIVITY_INTERVAL", value: "11m", want: `CHATSTATE_SESSION_ACTIVITY_INTERVAL="11m"` + durWant + `1s to 10m, such as 60s or 1m30s`},
		{variable: "CHATSTATE_SETTLE_TIMEOUT", value: "2s", ok: func(c config) bool { return c.SettleTimeout == 2*time.Second }},
		{variable: "CHATSTATE_SETTLE_TIMEOUT", value: "1h", want: `CHATSTATE_SETTLE_TIMEOUT="1h"` + durWant + `100ms to 5m, such as 60s or 1m30s`},
		{variable: "CHATSTATE_TEST_HOLD_PERSIST", value: "hold", ok: func(c config) bool { return c.HoldPersist == "hold" }},
		{variable: "CHATSTATE_TEST_HOLD_PERSIST", value: long, want: `CHATSTATE_TEST_HOLD_PERSIST="` + long + `": want message content of at most 16384 bytes`},
		{variable: "CHATSTATE_TEST_DIR", value: os.TempDir(), ok: func(c config) bool { return c.TestDir == os.TempDir() }},
		{variable: "CHATSTATE_TEST_DIR", value: "/nonexistent-dir", want: `CHATSTATE_TEST_DIR="/nonexistent-dir": want an existing directory`},
	}
}

// TestConfigEveryVariable checks a valid and an invalid value of every
// setting: a valid value arrives in the config, an invalid one is refused
// with one line naming the variable, its value and what is allowed.
func TestConfigEveryVariable(t *testing.T) {
	valid, invalid := map[string]bool{}, map[string]bool{}
	for _, tc := range configCases(t) {
		env := map[string]string{tc.variable: tc.value}
		for k, v := range tc.extra {
			env[k] = v
		}
		c, err := loadConfig(func(k string) string { return env[k] })
		label := tc.variable + "=" + truncate(tc.value)
		if tc.want == "" {
			valid[tc.variable] = true
			if err != nil {
				t.Errorf("%s: %v", label, err)
			} else if !tc.ok(c) {
				t.Errorf("%s: not applied: %+v", label, c)
			}
			continue
		}
		invalid[tc.variable] = true
		if err == nil {
			t.Errorf("%s: accepted, want %s", label, truncate(tc.want))
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", label, truncate(err.Error()), truncate(tc.want))
		}
		if strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error is not one line", label)
		}
		if strings.Contains(err.Error(), "pw@") {
			t.Errorf("%s: error shows a password", label)
		}
	}
	for _, s := range settings {
		if !valid[s.name] || !invalid[s.name] {
			t.Errorf("%s: the table needs a valid and an invalid value (valid %v, invalid %v)", s.name, valid[s.name], invalid[s.name])
		}
	}
}

func truncate(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// TestConfigDefaults: the development mode listens on loopback with the
// development secrets; an external Redis listens on every interface and
// brings no secrets of its own.
func TestConfigDefaults(t *testing.T) {
	c, err := loadConfig(func(string) string { return "" })
	if err != nil || !c.Dev || c.Addr != "127.0.0.1:8080" || string(c.JWTSecret) != devJWTSecret || c.APIKey != devAPIKey || !c.JWTRequireExp || c.DrainWindow != 10*time.Second || !c.Demo {
		t.Fatalf("development defaults: %+v, %v", c, err)
	}
	env := map[string]string{"REDIS_HOST": "r", "CHATSTATE_JWT_SECRET": "s3cret"}
	c, err = loadConfig(func(k string) string { return env[k] })
	if err != nil || c.Dev || c.Addr != ":8080" || c.APIKey != "" || c.DevJWTSecret || c.DevAPIKey || c.Demo {
		t.Fatalf("external Redis defaults: %+v, %v", c, err)
	}
}

// TestConfigTableInREADME keeps README's configuration table and the
// settings in step.
func TestConfigTableInREADME(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	section, _, _ := strings.Cut(string(b[bytes.Index(b, []byte("## Configuration")):]), "\n## ")
	var documented []string
	name := regexp.MustCompile("`((?:CHATSTATE|REDIS|MONGODB)_[A-Z_]+)`")
	for _, line := range strings.Split(section, "\n") {
		if cells := strings.Split(line, "|"); len(cells) > 2 {
			for _, m := range name.FindAllStringSubmatch(cells[1], -1) {
				documented = append(documented, m[1])
			}
		}
	}
	names := push.Names()
	for _, s := range settings {
		names = append(names, s.name)
	}
	slices.Sort(documented)
	slices.Sort(names)
	if !slices.Equal(documented, names) {
		t.Errorf("README configuration table lists\n%v\nthe settings are\n%v", documented, names)
	}
}

// TestServeRefusesBadConfig: serve returns the one-line error before doing
// anything, and the command exits non-zero printing just that line.
func TestServeRefusesBadConfig(t *testing.T) {
	const want = `CHATSTATE_MESSAGE_RATE_LIMIT="1000000": want an integer from 1 to 100000`
	env := map[string]string{"CHATSTATE_MESSAGE_RATE_LIMIT": "1000000", "CHATSTATE_ADDR": "127.0.0.1:0"}
	var stdout, stderr bytes.Buffer
	err := Main(context.Background(), []string{"serve"}, func(k string) string { return env[k] }, &stdout, &stderr)
	if err == nil || err.Error() != want {
		t.Fatalf("Main: %v, want %s", err, want)
	}
	if stdout.Len() != 0 || stderr.Len() != 0 {
		t.Errorf("serve wrote before refusing: stdout %q stderr %q", stdout.String(), stderr.String())
	}

	cmd := exec.Command(os.Args[0], "serve")
	cmd.Env = append(os.Environ(), "CHATSTATE_TEST_MAIN=1", "CHATSTATE_ADDR=127.0.0.1:0", "CHATSTATE_MESSAGE_RATE_LIMIT=1000000")
	stderr.Reset()
	cmd.Stderr = &stderr
	cmd.Stdout = io.Discard
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("process: %v, want a non-zero exit", err)
	}
	if got := stderr.String(); got != "chatstate: "+want+"\n" {
		t.Errorf("stderr %q, want the one line %q", got, "chatstate: "+want)
	}
}
