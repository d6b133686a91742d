package cleanup

import (
	"context"
	"log/slog"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/prometheus/client_golang/prometheus"
)

// job is one cleanup job on its own ticker; each job's round lives in its
// own file.
type job struct {
	c     *Cleaner
	name  string
	every time.Duration
	round func(ctx context.Context) (JobResult, error)
}

func (c *Cleaner) add(name string, every time.Duration, round func(context.Context) (JobResult, error)) {
	c.jobs = append(c.jobs, &job{c: c, name: name, every: every, round: round})
}

// Run ticks until ctx ends: each tick runs a round unless another node
// holds the job or already ran this interval's round. A failed round is
// logged; the next tick tries again.
func (j *job) Run(ctx context.Context) error {
	t := time.NewTicker(j.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		j.tick(ctx)
	}
}

// roundShare is the part of the interval a finished round blocks the other
// nodes for: short of the whole interval, so the next tick of any node,
// even one a little early, starts the next round.
const roundShare = 0.9

func (j *job) tick(ctx context.Context) {
	var res JobResult
	start := time.Now()
	ran, err := j.c.locks.Do(ctx, j.name, time.Duration(float64(j.every)*roundShare), func(ctx context.Context) (err error) {
		res, err = j.round(ctx)
		return err
	})
	if ctx.Err() != nil && err != nil {
		return // shutdown, not a failure
	}
	j.record(ran, res, err, time.Since(start), false)
}

// now runs one round at once, waiting (up to manualWait) for a round
// another node is running.
func (j *job) now(ctx context.Context) (JobResult, error) {
	var res JobResult
	deadline := time.Now().Add(manualWait)
	for {
		start := time.Now()
		ran, err := j.c.locks.DoNow(ctx, j.name, func(ctx context.Context) (err error) {
			res, err = j.round(ctx)
			return err
		})
		if ran || err != nil {
			j.record(ran, res, err, time.Since(start), true)
			return res, err
		}
		if time.Now().After(deadline) {
			return res, &chatstate.Error{Code: chatstate.EUNAVAILABLE, Message: "cleanup job " + j.name + " is running on another node, retry later", RetryAfter: time.Second}
		}
		select {
		case <-ctx.Done():
			return res, chatstate.Unavailable("cleanup", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (j *job) record(ran bool, res JobResult, err error, took time.Duration, manual bool) {
	m := j.c.metrics
	switch {
	case err != nil:
		m.runs.WithLabelValues(j.name, "error").Inc()
		j.c.log.Warn("cleanup job failed, retried on its next tick", "job", j.name, "err", err, "manual", manual)
		return
	case !ran:
		m.runs.WithLabelValues(j.name, "skipped").Inc()
		return
	}
	m.runs.WithLabelValues(j.name, "ok").Inc()
	m.removed.WithLabelValues(j.name).Add(float64(res.Removed))
	level := slog.LevelDebug
	if res.Removed > 0 || manual {
		level = slog.LevelInfo
	}
	attrs := []any{"job", j.name, "removed", res.Removed, "took", took.Round(time.Millisecond), "manual", manual}
	if q := res.Queue; q != nil {
		attrs = append(attrs, "high", q.High, "normal", q.Normal, "leased", q.Leased, "retry", q.Retry, "dead", q.Dead, "oldestAgeMs", q.OldestAgeMs)
	}
	j.c.log.Log(context.Background(), level, "cleanup round", attrs...)
}

type metrics struct {
	runs    *prometheus.CounterVec
	removed *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) metrics {
	m := metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "chatstate_cleanup_runs_total",
			Help: "Cleanup job rounds on this node by job and result: ok, error, skipped (another node had the round)."}, []string{"job", "result"}),
		removed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "chatstate_cleanup_removed_total",
			Help: "What cleanup rounds on this node removed, by job (see cleanup.JobResult)."}, []string{"job"}),
	}
	if reg != nil {
		reg.MustRegister(m.runs, m.removed)
	}
	return m
}
