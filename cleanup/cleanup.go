// Package cleanup is the Cleanup service (the design's RedisCleanupService):
// background jobs that keep Redis state honest, a manual cleanup, and the
// Redis statistics (the design's logRedisStats).
//
// Jobs, one file each: expired sessions (sessions.go, every 5 min), the
// push queue sweep behind the workers (notifications.go, 30 s: requeues
// expired leases, forwards due retries, reports the queue's depth), the
// presence sweep of dead nodes' users (presence.go, 15 s), the typing sweep
// (typing.go, 1 min) and the periodic stats log (statslog.go, 5 min).
//
// Every node runs every job's ticker; a lease lock per job (package lease)
// makes one node run each round: renewed while the round runs, released
// when it ends, with a marker that lets the other nodes skip the rest of
// that interval. Adding nodes therefore adds no sweep load, and two nodes
// never run one job at once. A failing round is logged and retried on the
// next tick. Each round is logged (debug when nothing changed, info when
// something was removed) and counted: chatstate_cleanup_runs_total{job,
// result} and chatstate_cleanup_removed_total{job}.
package cleanup

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/cache"
	"github.com/chatstate/chatstate/lease"
	"github.com/chatstate/chatstate/presence"
	"github.com/chatstate/chatstate/pushqueue"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"
)

// Config of the cleanup jobs. Zero values mean the documented defaults.
type Config struct {
	KeyPrefix string
	// Owner identifies this node in lock values; zero means "node".
	Owner string
	// SessionInterval: expired sessions sweep; zero means 5 minutes.
	SessionInterval time.Duration
	// NotificationInterval: push queue sweep (the design's notification
	// processing); zero means 30 seconds.
	NotificationInterval time.Duration
	// PresenceInterval: presence sweep (devices of dead nodes and expired
	// devices; their friends are told); zero means 15 seconds, so with the
	// presence defaults a crashed node's users are announced offline
	// within a minute.
	PresenceInterval time.Duration
	// TypingInterval: typing sweep; zero means 1 minute.
	TypingInterval time.Duration
	// StatsInterval: how often the stats are logged; zero means 5 minutes.
	StatsInterval time.Duration
	// Lease is a job's lock lease, renewed every third of it while the job
	// runs: how long a node that died mid-round blocks that job. Zero
	// means 30 seconds.
	Lease time.Duration
	// KeySample bounds the keys Stats walks to count keys per kind; zero
	// means 10000.
	KeySample int
	Logger    *slog.Logger
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.SessionInterval, 5*time.Minute)
	def(&c.NotificationInterval, 30*time.Second)
	def(&c.PresenceInterval, 15*time.Second)
	def(&c.TypingInterval, time.Minute)
	def(&c.StatsInterval, 5*time.Minute)
	def(&c.Lease, 30*time.Second)
	if c.KeySample <= 0 {
		c.KeySample = 10000
	}
	if c.Owner == "" {
		c.Owner = "node"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// SessionStore is the part of the Cache the session sweep needs.
type SessionStore interface {
	SessionUsers(ctx context.Context, cursor uint64, count int) ([]string, uint64, error)
	SweepSessions(ctx context.Context, userID string) (int, error)
}

// PresenceState is the part of presence.State the presence and typing
// sweeps and the stats need.
type PresenceState interface {
	Sweep(ctx context.Context) ([]chatstate.PresenceChange, error)
	SweepTyping(ctx context.Context) (presence.TypingCount, error)
	TypingEntries(ctx context.Context, maxSets int) (presence.TypingCount, error)
	OnlineCount(ctx context.Context) (int, error)
	Nodes(ctx context.Context) ([]presence.Node, error)
}

// PushQueue is the part of pushqueue.Queue the notification sweep and the
// stats need.
type PushQueue interface {
	Recover(ctx context.Context, limit int) (pushqueue.Stats, error)
	Stats(ctx context.Context) (pushqueue.Stats, error)
}

// RedisStats is the part of the Cache the stats need.
type RedisStats interface {
	Stats(ctx context.Context) (cache.Stats, error)
	KeyKinds(ctx context.Context, max int) (cache.KeySample, error)
}

// Deps are the services the jobs use. A nil dependency disables its jobs
// (and leaves its part of Stats empty).
type Deps struct {
	Redis    rueidis.Client // the job locks
	Sessions SessionStore
	Presence PresenceState
	Queue    PushQueue
	Cache    RedisStats
	// OnPresenceChange announces a change found by the presence sweep
	// (gateway.BroadcastPresence).
	OnPresenceChange func(ctx context.Context, p chatstate.Presence) error
	// SetDepth records the push queue's size per state after each sweep
	// (push.Metrics.SetDepth); nil records nothing.
	SetDepth func(state string, n int)
	// Registerer receives the cleanup metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Cleaner runs the jobs.
type Cleaner struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	locks   *lease.Locker
	jobs    []*job
	metrics metrics
}

// JobResult is what one round of a job did.
type JobResult struct {
	// Removed counts what the round removed: expired sessions, users who
	// went offline (presence), expired typing entries, or push jobs taken
	// out of the leased and retry sets back into the queue
	// (notifications).
	Removed int `json:"removed"`
	// Queue is the push queue after the notification sweep.
	Queue *QueueStats `json:"queue,omitempty"`
}

// Result is a manual cleanup: job name -> what its round did.
type Result map[string]JobResult

// New returns a Cleaner; it does no I/O.
func New(cfg Config, deps Deps) *Cleaner {
	cfg.setDefaults()
	c := &Cleaner{cfg: cfg, deps: deps, log: cfg.Logger, metrics: newMetrics(deps.Registerer),
		locks: lease.New(deps.Redis, lease.Config{KeyPrefix: cfg.KeyPrefix, Owner: cfg.Owner, TTL: cfg.Lease})}
	if deps.Sessions != nil {
		c.add("sessions", cfg.SessionInterval, sessionSweep{deps.Sessions}.round)
	}
	if deps.Queue != nil {
		c.add("notifications", cfg.NotificationInterval, (&notificationSweep{queue: deps.Queue, setDepth: deps.SetDepth, log: c.log}).round)
	}
	if deps.Presence != nil {
		c.add("presence", cfg.PresenceInterval, presenceSweep{deps.Presence, deps.OnPresenceChange, c.log}.round)
		c.add("typing", cfg.TypingInterval, typingSweep{deps.Presence}.round)
	}
	return c
}

// Run runs every enabled job, and the stats log, until ctx ends; it
// returns once all of them have stopped.
func (c *Cleaner) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, j := range c.jobs {
		wg.Go(func() { j.Run(ctx) })
	}
	if c.deps.Cache != nil || c.deps.Presence != nil || c.deps.Queue != nil {
		stats := &job{c: c, name: "stats", every: c.cfg.StatsInterval, round: statsLog{c}.round}
		wg.Go(func() { stats.Run(ctx) })
	}
	wg.Wait()
	return nil
}

// manualWait bounds how long RunOnce waits for a round another node is
// running.
const manualWait = 3 * time.Second

// RunOnce runs every enabled job now (the manual cleanup), each under its
// lock: a round another node is running is waited for, then this one runs.
// It returns the first error (the other jobs still run).
func (c *Cleaner) RunOnce(ctx context.Context) (Result, error) {
	out := Result{}
	var first error
	for _, j := range c.jobs {
		res, err := j.now(ctx)
		if err != nil {
			c.log.Warn("manual cleanup failed", "job", j.name, "err", err)
			if first == nil {
				first = err
			}
			continue
		}
		out[j.name] = res
	}
	return out, first
}
