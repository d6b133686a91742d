// Package cache is the Redis cache service of chatstate: recent messages
// with per-conversation sequence numbers, device sessions, friend lists,
// push notifications, sliding-window rate limits and the security log.
//
// Every method is one round trip. Writes that touch several keys run as one
// Lua script over keys of a single hash tag ({u:<user>} or {c:<conv>}), so
// they are atomic and cluster-safe. Scripts read the clock with TIME, so all
// gateway nodes agree on "now". docs/redis-keys.md ("Cache") documents the
// key layout.
package cache

import (
	"embed"
	"strconv"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/keys"
	"github.com/chatstate/chatstate/internal/luascript"
	"github.com/redis/rueidis"
)

// Config tunes the cache. Every zero value means the documented default.
type Config struct {
	KeyPrefix string // prepended to every key; zero means none

	MessageLimit    int           // messages kept per conversation; zero means 100
	MessageTTL      time.Duration // idle lifetime of a conversation's cache and its dedupe index; zero means 24h
	MaxContentBytes int           // message content size; zero means 16 KiB
	// DedupeLimit is how many client message ids a conversation's dedupe
	// index keeps (the newest by seq); a resend is answered from the cache
	// only while its original is cached, so more than MessageLimit buys
	// nothing. Zero means MessageLimit. docs/redis-keys.md ("Dedupe window").
	DedupeLimit int
	// SettleTimeout is how long a reserved seq may stay unsettled (its send
	// not yet stored and committed) before another sender may skip it, so a
	// failed send or a dead node stalls its conversation at most this long;
	// zero means 3s, so a send waiting behind such a seq still acks within
	// the gateway's 5 s event deadline. docs/delivery.md.
	SettleTimeout time.Duration

	SessionTTL  time.Duration // session lifetime, extended on activity; zero means 1h
	MaxSessions int           // sessions per user, the least recently active is evicted beyond it; zero means 50

	FriendsTTL time.Duration // friend list cache lifetime; zero means 2h
	MaxFriends int           // friends per cached list; zero means 5000

	NotificationLimit int           // notifications kept per user; zero means 100
	NotificationTTL   time.Duration // idle lifetime of a user's notification list; zero means 7 days

	SecurityLogLimit int           // security events kept per user; zero means 100
	SecurityLogTTL   time.Duration // idle lifetime of a security log; zero means 90 days

	KnownDevicesTTL time.Duration // a device unseen this long logs in as new again; zero means 90 days
	MaxKnownDevices int           // devices remembered per user, least recently seen forgotten; zero means 100

	MaxValueBytes int // JSON size of session data, notifications and security events; zero means 4 KiB

	// UnreadLimit is how many counted message seqs a conversation keeps
	// for unread badges: a badge is exact up to it and stays at it beyond
	// (show it as "1000+"); zero means 1000. They are kept as runs of
	// consecutive seqs (cache/counted_lib.lua), so the limit costs bytes
	// per run, not per seq.
	UnreadLimit int
	// ConvListTTL is the idle lifetime of a user's cached conversation
	// list, refilled from the store after it; zero means 7 days.
	ConvListTTL time.Duration
}

func (c Config) withDefaults() Config {
	setInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	setDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	setInt(&c.MessageLimit, 100)
	setDur(&c.MessageTTL, 24*time.Hour)
	setInt(&c.MaxContentBytes, chatstate.DefaultMessageContentBytes)
	setInt(&c.DedupeLimit, c.MessageLimit)
	setDur(&c.SettleTimeout, 3*time.Second)
	setDur(&c.SessionTTL, time.Hour)
	setInt(&c.MaxSessions, 50)
	setDur(&c.FriendsTTL, 2*time.Hour)
	setInt(&c.MaxFriends, 5000)
	setInt(&c.NotificationLimit, 100)
	setDur(&c.NotificationTTL, 7*24*time.Hour)
	setInt(&c.SecurityLogLimit, 100)
	setDur(&c.SecurityLogTTL, 90*24*time.Hour)
	setDur(&c.KnownDevicesTTL, 90*24*time.Hour)
	setInt(&c.MaxKnownDevices, 100)
	setInt(&c.MaxValueBytes, 4<<10)
	setInt(&c.UnreadLimit, 1000)
	setDur(&c.ConvListTTL, 7*24*time.Hour)
	return c
}

// Cache implements chatstate.Cache on Redis.
type Cache struct {
	client rueidis.Client
	cfg    Config
	keys   keys.Keys
}

var _ chatstate.Cache = (*Cache)(nil)

// New returns a cache using client. It does no I/O.
func New(client rueidis.Client, cfg Config) *Cache {
	cfg = cfg.withDefaults()
	return &Cache{client: client, cfg: cfg, keys: keys.New(cfg.KeyPrefix)}
}

// Config returns the effective configuration (defaults filled in).
func (c *Cache) Config() Config { return c.cfg }

//go:embed *.lua
var luaFS embed.FS

// load reads an embedded script.
func load(name string) *luascript.Script { return luascript.New(name, source(name)) }

// loadMessage reads a message script with counted_lib.lua and
// message_lib.lua prepended (Redis 7.0's EVAL has no libraries).
func loadMessage(name string) *luascript.Script {
	return luascript.New(name, source("counted_lib")+source("message_lib")+source(name))
}

// loadCounted reads a script with counted_lib.lua prepended.
func loadCounted(name string) *luascript.Script {
	return luascript.New(name, source("counted_lib")+source(name))
}

func source(name string) string {
	b, err := luaFS.ReadFile(name + ".lua")
	if err != nil {
		panic("cache: missing script " + name + ".lua")
	}
	return string(b)
}

var (
	scriptMessageAdd        = loadMessage("message_add")
	scriptMessageCommit     = loadMessage("message_commit")
	scriptMessageSettle     = loadMessage("message_settle")
	scriptMessageSeqFloor   = load("message_seqfloor")
	scriptMessageReserve    = loadMessage("message_reserve")
	scriptSessionCreate     = load("session_create")
	scriptSessionTouch      = load("session_touch")
	scriptSessionRead       = load("session_read")
	scriptSessionSweep      = load("session_sweep")
	scriptFriendsSet        = load("friends_set")
	scriptFriendsInvalidate = load("friends_invalidate")
	scriptNotificationAdd   = load("notification_add")
	scriptRateLimitCheck    = load("ratelimit_check")
	scriptSecurityLogAdd    = load("securitylog_add")
	scriptDeviceRemember    = load("device_remember")
	scriptReadsMark         = load("reads_mark")
	scriptReadsFill         = load("reads_fill")
	scriptSummaryFill       = loadCounted("summary_fill")
	scriptSummaryRead       = loadCounted("summary_read")
	scriptConvListPage      = load("convlist_page")
	scriptConvListFill      = load("convlist_fill")
	scriptConvListTouch     = load("convlist_touch")
)

var allScripts = []*luascript.Script{
	scriptMessageAdd, scriptMessageCommit, scriptMessageSettle, scriptMessageSeqFloor, scriptMessageReserve, scriptSessionCreate, scriptSessionTouch,
	scriptSessionRead, scriptSessionSweep, scriptFriendsSet, scriptFriendsInvalidate, scriptNotificationAdd,
	scriptRateLimitCheck, scriptSecurityLogAdd, scriptDeviceRemember, scriptReadsMark, scriptReadsFill, scriptSummaryFill, scriptSummaryRead,
	scriptConvListPage, scriptConvListFill, scriptConvListTouch,
}

// Scripts returns the Lua source of every script by name (file name without
// ".lua"), e.g. for running redis-benchmark EVALSHA on the same code.
func Scripts() map[string]string { return luascript.Sources(allScripts...) }

func ms(d time.Duration) string { return itoa(d.Milliseconds()) }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// limitArg clamps a caller's page size: zero or less means max.
func limitArg(kind string, limit, max int) (int, error) {
	if limit < 0 {
		return 0, chatstate.Errorf(chatstate.EINVALID, "%s must not be negative", kind)
	}
	if limit == 0 || limit > max {
		return max, nil
	}
	return limit, nil
}

// mapErr maps a Redis error for clients: coded script replies, outages as
// unavailable (luascript.Err).
func mapErr(err error) error { return luascript.Err(err) }
