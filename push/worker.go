package push

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/pushqueue"
)

// Queue is what the worker needs of the push queue (*pushqueue.Queue).
type Queue interface {
	Claim(ctx context.Context, n int) ([]pushqueue.Job, error)
	Done(ctx context.Context, id string) error
	Retry(ctx context.Context, id string, delay time.Duration) error
	Kill(ctx context.Context, id, reason string) error
	Woken() <-chan struct{}
}

// TokenStore removes device tokens a provider reports as gone (the
// store), only while they are still the device's token.
type TokenStore interface {
	RemoveDeviceTokenIf(ctx context.Context, userID, deviceID, token string) error
}

// WorkerConfig tunes a worker. Zero values mean the documented defaults.
type WorkerConfig struct {
	// Concurrency is how many pushes one worker sends at once; zero means 16.
	Concurrency int
	// MaxAttempts is how many sends a job gets before it is dead-lettered;
	// zero means 8.
	MaxAttempts int
	// BaseBackoff and MaxBackoff bound the retry delay, which doubles per
	// attempt (with jitter); zero means 1s and 10 minutes.
	BaseBackoff, MaxBackoff time.Duration
	// Poll is how often an idle worker looks for jobs that another node
	// queued (this node's own wake it at once); zero means 500ms.
	Poll time.Duration
	// SendTimeout bounds one provider call; zero means 10s. It must stay
	// below the queue's lease.
	SendTimeout time.Duration
	Logger      *slog.Logger
}

func (c *WorkerConfig) setDefaults() {
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 8
	}
	if c.BaseBackoff <= 0 {
		c.BaseBackoff = time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 10 * time.Minute
	}
	if c.Poll <= 0 {
		c.Poll = 500 * time.Millisecond
	}
	if c.SendTimeout <= 0 {
		c.SendTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Worker claims push jobs and sends them through a provider. Every node
// runs one; the queue's leases keep them from sending the same job twice.
type Worker struct {
	cfg      WorkerConfig
	queue    Queue
	provider chatstate.PushProvider
	tokens   TokenStore
	m        *Metrics
}

// NewWorker returns a worker; m may be nil.
func NewWorker(q Queue, provider chatstate.PushProvider, tokens TokenStore, m *Metrics, cfg WorkerConfig) *Worker {
	cfg.setDefaults()
	return &Worker{cfg: cfg, queue: q, provider: provider, tokens: tokens, m: m}
}

// Run sends jobs until ctx ends, then waits for the sends in flight.
func (w *Worker) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, w.cfg.Concurrency)
	idle := time.NewTimer(0)
	defer idle.Stop()
	errBackoff := 100 * time.Millisecond
	for {
		// Wait for a free slot before claiming, so a job is never leased
		// while it waits here.
		select {
		case <-ctx.Done():
			return nil
		case slots <- struct{}{}:
		}
		free := 1 + w.cfg.Concurrency - len(slots)
		woken := w.queue.Woken()
		jobs, err := w.queue.Claim(ctx, free)
		if err != nil && ctx.Err() == nil {
			w.cfg.Logger.Warn("push queue claim failed", "err", err, "retry_in", errBackoff)
		}
		if len(jobs) == 0 {
			<-slots
			wait := w.cfg.Poll
			if err != nil {
				wait, errBackoff = errBackoff, min(errBackoff*2, 5*time.Second)
			}
			idle.Reset(wait)
			select {
			case <-ctx.Done():
				return nil
			case <-woken:
			case <-idle.C:
			}
			continue
		}
		errBackoff = 100 * time.Millisecond
		for i, j := range jobs {
			if i > 0 {
				slots <- struct{}{} // free counted this slot
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				// A send in flight finishes (or times out) even while the
				// node shuts down: stopping halfway would only leave the
				// job to its lease.
				w.handle(context.WithoutCancel(ctx), j)
			}()
		}
	}
}

// handle sends one job and settles it in the queue.
func (w *Worker) handle(ctx context.Context, j pushqueue.Job) {
	var p chatstate.Push
	if err := json.Unmarshal(j.Payload, &p); err != nil {
		w.finish(ctx, w.provider.Name(), j, w.queue.Kill(ctx, j.ID, "malformed job: "+err.Error()), "dead")
		return
	}
	name := w.providerName(p)
	sendCtx, cancel := context.WithTimeout(ctx, w.cfg.SendTimeout)
	start := time.Now()
	err := w.provider.Send(sendCtx, p)
	cancel()
	w.m.observeSend(name, time.Since(start))
	switch {
	case err == nil:
		w.finish(ctx, name, j, w.queue.Done(ctx, j.ID), "sent")
	case errors.Is(err, chatstate.ErrTokenGone):
		if rerr := w.tokens.RemoveDeviceTokenIf(ctx, p.UserID, p.DeviceID, p.Token); rerr != nil {
			w.cfg.Logger.Warn("push token gone but not removed", "user", p.UserID, "device", p.DeviceID, "err", rerr)
		}
		w.finish(ctx, name, j, w.queue.Done(ctx, j.ID), "token_gone")
	case chatstate.Retryable(err) && j.Attempt < w.cfg.MaxAttempts:
		w.finish(ctx, name, j, w.queue.Retry(ctx, j.ID, w.backoff(j.Attempt, err)), "retried")
	default:
		w.cfg.Logger.Warn("push dead-lettered", "job", j.ID, "attempt", j.Attempt, "err", err)
		w.finish(ctx, name, j, w.queue.Kill(ctx, j.ID, err.Error()), "dead")
	}
}

func (w *Worker) finish(ctx context.Context, provider string, j pushqueue.Job, qerr error, outcome string) {
	w.m.count(provider, outcome)
	if qerr != nil {
		// The job keeps its lease and returns to the queue when it ends.
		w.cfg.Logger.Warn("push queue update failed", "job", j.ID, "outcome", outcome, "err", qerr)
	}
}

// providerName names the provider that delivers p, for metrics.
func (w *Worker) providerName(p chatstate.Push) string {
	if r, ok := w.provider.(*Router); ok {
		if prov, err := r.For(p); err == nil {
			return prov.Name()
		}
	}
	return w.provider.Name()
}

// backoff doubles per attempt from BaseBackoff up to MaxBackoff, with
// jitter over the upper half so retries of many jobs spread out, and never
// comes before a delay the provider asked for.
func (w *Worker) backoff(attempt int, err error) time.Duration {
	d := w.cfg.BaseBackoff
	for i := 1; i < attempt && d < w.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, w.cfg.MaxBackoff)
	d = d/2 + rand.N(d/2+1)
	var e *chatstate.Error
	if errors.As(err, &e) && e.RetryAfter > d {
		d = min(e.RetryAfter, w.cfg.MaxBackoff)
	}
	return d
}
