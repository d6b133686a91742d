// Package cleanup is the Cleanup service: background sweeps that keep Redis
// state honest (expired sessions, presence of crashed nodes, the push queue),
// a manual cleanup, and Redis statistics.
//
// Every node runs the jobs; a short Redis lock per job and interval makes
// one node do each round, so adding nodes adds no sweep load.
package cleanup

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/keys"
	"github.com/redis/rueidis"
)

// Config of the cleanup jobs. Zero values mean the documented defaults.
type Config struct {
	KeyPrefix string
	// Owner identifies this node in lock values; zero means "node".
	Owner string
	// SessionInterval: expired sessions sweep; zero means 5 minutes.
	SessionInterval time.Duration
	// PresenceInterval: presence sweep (devices of dead nodes and expired
	// devices; their friends are told); zero means 15 seconds, so with the
	// presence defaults a crashed node's users are announced offline
	// within a minute.
	PresenceInterval time.Duration
	Logger           *slog.Logger
}

// SessionStore is the part of the Cache the session sweep needs.
type SessionStore interface {
	SessionUsers(ctx context.Context, cursor uint64, count int) ([]string, uint64, error)
	SweepSessions(ctx context.Context, userID string) (int, error)
}

// PresenceSweeper is the part of RealTimeState the presence sweep needs.
type PresenceSweeper interface {
	Sweep(ctx context.Context) ([]chatstate.PresenceChange, error)
}

// Deps are the services the jobs use. A nil dependency disables its job.
type Deps struct {
	Redis    rueidis.Client
	Sessions SessionStore
	Presence PresenceSweeper
	// OnPresenceChange announces a change found by the presence sweep
	// (gateway.BroadcastPresence).
	OnPresenceChange func(ctx context.Context, p chatstate.Presence) error
}

// Cleaner runs the jobs.
type Cleaner struct {
	cfg  Config
	deps Deps
	keys keys.Keys
	log  *slog.Logger
}

// Result is what one cleanup round did.
type Result struct {
	SessionsRemoved  int `json:"sessionsRemoved"`
	UsersWentOffline int `json:"usersWentOffline"`
}

// New returns a Cleaner; it does no I/O.
func New(cfg Config, deps Deps) *Cleaner {
	if cfg.Owner == "" {
		cfg.Owner = "node"
	}
	if cfg.SessionInterval <= 0 {
		cfg.SessionInterval = 5 * time.Minute
	}
	if cfg.PresenceInterval <= 0 {
		cfg.PresenceInterval = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Cleaner{cfg: cfg, deps: deps, keys: keys.New(cfg.KeyPrefix), log: cfg.Logger}
}

// Run runs every enabled job until ctx ends.
func (c *Cleaner) Run(ctx context.Context) {
	var wg sync.WaitGroup
	start := func(name string, every time.Duration, job func(context.Context, *Result) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.loop(ctx, name, every, job)
		}()
	}
	if c.deps.Sessions != nil {
		start("sessions", c.cfg.SessionInterval, c.sweepSessions)
	}
	if c.deps.Presence != nil {
		start("presence", c.cfg.PresenceInterval, c.sweepPresence)
	}
	wg.Wait()
}

// RunOnce runs every enabled job now, without locks: the manual cleanup.
func (c *Cleaner) RunOnce(ctx context.Context) (Result, error) {
	var r Result
	if c.deps.Sessions != nil {
		if err := c.sweepSessions(ctx, &r); err != nil {
			return r, err
		}
	}
	if c.deps.Presence != nil {
		if err := c.sweepPresence(ctx, &r); err != nil {
			return r, err
		}
	}
	return r, nil
}

func (c *Cleaner) loop(ctx context.Context, name string, every time.Duration, job func(context.Context, *Result) error) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !c.lock(ctx, name, every) {
			continue
		}
		var r Result
		if err := job(ctx, &r); err != nil && ctx.Err() == nil {
			c.log.Warn("cleanup job failed", "job", name, "err", err)
		}
	}
}

// lock takes the job's lock for slightly less than one interval, so one node
// runs each round and a crashed holder blocks at most one round.
func (c *Cleaner) lock(ctx context.Context, name string, every time.Duration) bool {
	r := c.deps.Redis
	ttl := max(every*9/10, 100*time.Millisecond)
	err := r.Do(ctx, r.B().Set().Key(c.keys.Lock(name)).Value(c.cfg.Owner).Nx().Px(ttl).Build()).Error()
	if rueidis.IsRedisNil(err) {
		return false
	}
	if err != nil {
		c.log.Warn("cleanup lock failed", "job", name, "err", err)
		return false
	}
	return true
}

func (c *Cleaner) sweepSessions(ctx context.Context, r *Result) error {
	var cursor uint64
	for {
		users, next, err := c.deps.Sessions.SessionUsers(ctx, cursor, 500)
		if err != nil {
			return err
		}
		for _, u := range users {
			n, err := c.deps.Sessions.SweepSessions(ctx, u)
			if err != nil {
				return err
			}
			r.SessionsRemoved += n
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

func (c *Cleaner) sweepPresence(ctx context.Context, r *Result) error {
	changes, err := c.deps.Presence.Sweep(ctx)
	for _, ch := range changes {
		r.UsersWentOffline++
		if c.deps.OnPresenceChange != nil {
			if err := c.deps.OnPresenceChange(ctx, ch.After); err != nil {
				c.log.Warn("presence change not announced", "user", ch.After.UserID, "err", err)
			}
		}
	}
	return err
}
