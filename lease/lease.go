// Package lease is a lease lock on Redis for background jobs: one holder
// at a time per job, the lease renewed while the job runs, and released
// with compare-and-delete on the holder's token when it ends, so a holder
// whose lease lapsed (a long GC pause, a partition) can never release or
// extend its successor's. A holder that loses its lease has its job's
// context cancelled.
//
// A release can leave a "round done" marker until the end of the job's
// interval, so every node may tick every interval and still one node runs
// each round: adding nodes adds no job load. A manual run takes such a
// marker (never a held lease).
//
// Keys: keys.Lock(<job>), one string each, so every script is single-key.
package lease

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"errors"
	"strconv"
	"time"

	"github.com/chatstate/chatstate/internal/keys"
	"github.com/chatstate/chatstate/internal/luascript"
	"github.com/redis/rueidis"
)

// Config of a Locker. Zero values mean the documented defaults.
type Config struct {
	KeyPrefix string
	// Owner names this node in lock values (operators see who holds a
	// job); zero means "node".
	Owner string
	// TTL is the lease: how long a holder that stopped renewing (crashed,
	// hung) blocks the job. Zero means 30s. It is renewed every third of it.
	TTL time.Duration
}

// ErrLost is the cause of a job context cancelled because its lease was
// lost (expired before a renewal, or taken over).
var ErrLost = errors.New("lease: lost")

// Locker runs jobs under their lease locks. It is safe for concurrent use.
type Locker struct {
	client rueidis.Client
	cfg    Config
	keys   keys.Keys
}

// New returns a Locker. It does no I/O.
func New(client rueidis.Client, cfg Config) *Locker {
	if cfg.Owner == "" {
		cfg.Owner = "node"
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 30 * time.Second
	}
	return &Locker{client: client, cfg: cfg, keys: keys.New(cfg.KeyPrefix)}
}

//go:embed *.lua
var luaFS embed.FS

func load(name string) *luascript.Script {
	b, err := luaFS.ReadFile(name + ".lua")
	if err != nil {
		panic("lease: missing script " + name + ".lua")
	}
	return luascript.New(name, string(b))
}

var (
	scriptAcquire = load("lease_acquire")
	scriptRenew   = load("lease_renew")
	scriptRelease = load("lease_release")
)

// Scripts returns the Lua source of every script by name.
func Scripts() map[string]string { return luascript.Sources(scriptAcquire, scriptRenew, scriptRelease) }

// Do runs fn under the lease of job name, unless another holder has it or
// the current round already ran; ran reports whether fn ran. round is the
// job's interval: the release leaves the round's marker until round after
// the start (0: no marker). err is fn's error, or a lock error.
func (l *Locker) Do(ctx context.Context, name string, round time.Duration, fn func(context.Context) error) (ran bool, err error) {
	return l.do(ctx, name, round, false, fn)
}

// DoNow is Do for a manual run: it also takes a finished round's marker,
// and leaves none.
func (l *Locker) DoNow(ctx context.Context, name string, fn func(context.Context) error) (ran bool, err error) {
	return l.do(ctx, name, 0, true, fn)
}

func (l *Locker) do(ctx context.Context, name string, round time.Duration, force bool, fn func(context.Context) error) (bool, error) {
	start := time.Now()
	key := l.keys.Lock(name)
	token := l.token()
	flag := ""
	if force {
		flag = "1"
	}
	n, err := scriptAcquire.Exec(ctx, l.client, []string{key}, []string{token, ms(l.cfg.TTL), flag}).AsInt64()
	if err != nil {
		return false, luascript.Err(err)
	}
	if n == 0 {
		return false, nil
	}
	jobCtx, cancel := context.WithCancelCause(ctx)
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		l.renew(jobCtx, key, token, cancel)
	}()
	err = fn(jobCtx)
	if context.Cause(jobCtx) == ErrLost && !errors.Is(err, ErrLost) {
		err = errors.Join(ErrLost, err)
	}
	cancel(nil)
	<-renewed

	// The release must land even when ctx ended (shutdown): otherwise the
	// next holder waits out the lease.
	relCtx, relCancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer relCancel()
	rest := round - time.Since(start)
	if round <= 0 || rest < time.Millisecond {
		rest = 0
	}
	if rerr := scriptRelease.Exec(relCtx, l.client, []string{key}, []string{token, ms(rest)}).Error(); rerr != nil && err == nil {
		err = luascript.Err(rerr)
	}
	return true, err
}

// renew extends the lease every third of the TTL until ctx ends. When the
// lease is gone, or no renewal landed for a whole TTL (it may have lapsed
// meanwhile), the job is cancelled with ErrLost.
func (l *Locker) renew(ctx context.Context, key, token string, cancel context.CancelCauseFunc) {
	t := time.NewTicker(l.cfg.TTL / 3)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		callCtx, callCancel := context.WithTimeout(ctx, l.cfg.TTL/3)
		n, err := scriptRenew.Exec(callCtx, l.client, []string{key}, []string{token, ms(l.cfg.TTL)}).AsInt64()
		callCancel()
		switch {
		case err == nil && n == 1:
			last = time.Now()
		case err == nil || time.Since(last) >= l.cfg.TTL:
			cancel(ErrLost)
			return
		}
	}
}

func (l *Locker) token() string {
	var b [8]byte
	rand.Read(b[:])
	return l.cfg.Owner + "/" + hex.EncodeToString(b[:])
}

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
