// Package presence implements chatstate.RealTimeState on Redis: which users
// are online on which devices, their chosen status and last seen time, and
// who is typing in a conversation.
//
// Every call is one Redis round trip (OnlineUsers: two) running Lua scripts
// that touch the keys of a single hash tag, so the package works on Redis
// Cluster. Scripts read the clock with TIME, so gateway nodes agree on "now".
// docs/redis-keys.md ("Presence", "Typing") documents the key layout.
//
// Crash safety: each device entry records the node instance that holds its
// socket. Instances heartbeat into a sorted set (Run / Heartbeat); devices
// of an instance whose heartbeat is older than NodeTimeout are treated as
// gone by every query and pruned by every write and by Sweep.
package presence

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/keys"
	"github.com/chatstate/chatstate/internal/luascript"
	"github.com/redis/rueidis"
)

// Config configures a State. Zero values select the documented defaults.
type Config struct {
	// KeyPrefix is prepended to every key. Zero means no prefix.
	KeyPrefix string
	// NodeID names this gateway node. The State runs as an instance
	// NodeID + "#" + a random boot suffix, so a node restarted under the same
	// NodeID does not revive its crashed predecessor's devices. Characters
	// outside [A-Za-z0-9._@-] are replaced by '_'. Zero means the host name.
	NodeID string
	// DeviceTTL is how long a device stays online after its last activity
	// (SetUserOnline or TouchDevice). Zero means 5 minutes.
	DeviceTTL time.Duration
	// TypingTTL is how long a typing entry lives after the last
	// SetUserTyping. Zero means 10 seconds.
	TypingTTL time.Duration
	// NodeTimeout: an instance whose last heartbeat is older is dead and its
	// devices are offline. Zero means 30 seconds.
	NodeTimeout time.Duration
	// HeartbeatInterval is how often Run heartbeats. Zero means 5 seconds.
	// Keep it well below NodeTimeout.
	HeartbeatInterval time.Duration
	// LastSeenTTL is how long a user's presence hash (status, last seen)
	// survives the last write. Zero means 30 days. Never less than DeviceTTL.
	LastSeenTTL time.Duration
	// MaxDevices caps live devices per user; a new device beyond it evicts
	// the least recently active one. Zero means 16.
	MaxDevices int
	// MaxBulk caps the ids of one Presence call (more is invalid). Zero
	// means 500.
	MaxBulk int
	// MaxTypers caps the entries of one conversation's typing set; beyond it
	// the entries closest to expiry are dropped. Zero means 100.
	MaxTypers int
	// Logger receives background errors (Run). Zero means slog.Default().
	Logger *slog.Logger
	// Connections reports this instance's open connections (the gateway's
	// count); every heartbeat records it for Nodes. Zero means 0.
	Connections func() int
}

const (
	defaultDeviceTTL         = 5 * time.Minute
	defaultTypingTTL         = 10 * time.Second
	defaultNodeTimeout       = 30 * time.Second
	defaultHeartbeatInterval = 5 * time.Second
	defaultLastSeenTTL       = 30 * 24 * time.Hour
	defaultMaxDevices        = 16
	defaultMaxBulk           = 500
	defaultMaxTypers         = 100

	// maxPage caps OnlineUsers' limit; defaultPage is used for limit 0.
	maxPage     = 1000
	defaultPage = 100
	// maxDead bounds the dead-instance list passed to every script.
	maxDead = 1000
	// sweepBatch is how many users one Sweep round trip validates.
	sweepBatch = 200
)

func (c Config) withDefaults() Config {
	if c.DeviceTTL <= 0 {
		c.DeviceTTL = defaultDeviceTTL
	}
	if c.TypingTTL <= 0 {
		c.TypingTTL = defaultTypingTTL
	}
	if c.NodeTimeout <= 0 {
		c.NodeTimeout = defaultNodeTimeout
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = defaultHeartbeatInterval
	}
	if c.LastSeenTTL <= 0 {
		c.LastSeenTTL = defaultLastSeenTTL
	}
	if c.LastSeenTTL < c.DeviceTTL {
		c.LastSeenTTL = c.DeviceTTL
	}
	if c.MaxDevices <= 0 {
		c.MaxDevices = defaultMaxDevices
	}
	if c.MaxBulk <= 0 {
		c.MaxBulk = defaultMaxBulk
	}
	if c.MaxTypers <= 0 {
		c.MaxTypers = defaultMaxTypers
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.NodeID == "" {
		c.NodeID, _ = os.Hostname()
	}
	c.NodeID = sanitizeNodeID(c.NodeID)
	return c
}

// Defaults returns c with every zero field set to its default, as New
// uses it (for callers that validate settings against the effective
// values).
func (c Config) Defaults() Config { return c.withDefaults() }

func sanitizeNodeID(id string) string {
	if id == "" {
		return "node"
	}
	if len(id) > 64 {
		id = id[:64]
	}
	b := []byte(id)
	for i, c := range b {
		if chatstate.ValidateID("node", string(c)) != nil {
			b[i] = '_'
		}
	}
	return string(b)
}

// State is the Redis implementation of chatstate.RealTimeState. It is safe
// for concurrent use. New does no I/O: call Heartbeat once before serving
// (so other nodes know this instance is alive) and then keep Run going.
type State struct {
	c        rueidis.Client
	k        keys.Keys
	cfg      Config
	instance string
	dead     atomic.Pointer[string] // space-separated dead instances

	// Durations in ms as script arguments, formatted once.
	deviceTTL, lastSeenTTL, typingTTL string
	maxDevices, maxTypers             string
}

var _ chatstate.RealTimeState = (*State)(nil)

// New returns a State using client. It does no I/O.
func New(client rueidis.Client, cfg Config) *State {
	cfg = cfg.withDefaults()
	var b [4]byte
	rand.Read(b[:])
	s := &State{
		c:           client,
		k:           keys.New(cfg.KeyPrefix),
		cfg:         cfg,
		instance:    cfg.NodeID + "#" + hex.EncodeToString(b[:]),
		deviceTTL:   ms(cfg.DeviceTTL),
		lastSeenTTL: ms(cfg.LastSeenTTL),
		typingTTL:   ms(cfg.TypingTTL),
		maxDevices:  strconv.Itoa(cfg.MaxDevices),
		maxTypers:   strconv.Itoa(cfg.MaxTypers),
	}
	empty := ""
	s.dead.Store(&empty)
	return s
}

// Instance returns this State's node instance id (NodeID#bootSuffix).
func (s *State) Instance() string { return s.instance }

// Dead returns the node instances the last Heartbeat reported dead.
func (s *State) Dead() []string { return strings.Fields(*s.dead.Load()) }

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

//go:embed *.lua
var luaFS embed.FS

// load reads an embedded script; presence_* scripts get the shared prelude
// presence_lib.lua prepended (Redis 7.0 has no Lua libraries for EVAL).
func load(name string, withLib bool) *luascript.Script {
	src, err := luaFS.ReadFile(name + ".lua")
	if err != nil {
		panic(err) // embedded at build time: cannot happen
	}
	full := string(src)
	if withLib {
		lib, err := luaFS.ReadFile("presence_lib.lua")
		if err != nil {
			panic(err)
		}
		full = string(lib) + full
	}
	return luascript.New(name, full)
}

var (
	scriptOnline    = load("presence_online", true)
	scriptOffline   = load("presence_offline", true)
	scriptTouch     = load("presence_touch", true)
	scriptStatus    = load("presence_status", true)
	scriptGet       = load("presence_get", true)
	scriptSweep     = load("presence_sweep", true)
	scriptDue       = load("online_due", false)
	scriptRemove    = load("online_remove", false)
	scriptHeartbeat = load("node_heartbeat", false)
	scriptNodeLive  = load("node_live", false)
	scriptTypeStart = load("typing_start", false)
	scriptTypeList  = load("typing_list", false)
	scriptTypeSweep = load("typing_sweep", false)
	scriptNodeList  = load("node_list", false)
	allScripts      = []*luascript.Script{scriptOnline, scriptOffline, scriptTouch, scriptStatus, scriptGet,
		scriptSweep, scriptDue, scriptRemove, scriptHeartbeat, scriptNodeLive, scriptTypeStart, scriptTypeList,
		scriptTypeSweep, scriptNodeList}
)

// Scripts returns every Lua script this package runs, by name (file name
// without .lua), as sent to Redis (presence_* scripts include the shared
// prelude), e.g. for redis-benchmark EVALSHA runs after SCRIPT LOAD.
func Scripts() map[string]string { return luascript.Sources(allScripts...) }

func (s *State) exec(ctx context.Context, cl luascript.Call) rueidis.RedisResult {
	return cl.Script.Exec(ctx, s.c, cl.Keys, cl.Args)
}

// pipeline sends calls and extra plain commands in one DoMulti (see
// luascript.Pipeline).
func (s *State) pipeline(ctx context.Context, calls []luascript.Call, extra ...rueidis.Completed) []rueidis.RedisResult {
	return luascript.Pipeline(ctx, s.c, calls, extra...)
}
