package cleanup

import (
	"context"
	"log/slog"
	"sync/atomic"
)

// notificationSweep is the design's notification processing behind the
// live push workers: it requeues jobs whose lease expired (their worker
// died), forwards retries that are due, records the queue's depth and
// logs the dead-letter size when it changes.
type notificationSweep struct {
	queue    PushQueue
	setDepth func(state string, n int)
	log      *slog.Logger
	lastDead atomic.Int64
}

// recoverLimit bounds one sweep's requeues and forwards each; the workers'
// claims recover too, so a backlog drains anyway.
const recoverLimit = 1000

func (j *notificationSweep) round(ctx context.Context) (JobResult, error) {
	st, err := j.queue.Recover(ctx, recoverLimit)
	if err != nil {
		return JobResult{}, err
	}
	q := queueStats(st)
	if j.setDepth != nil {
		for state, n := range map[string]int{"high": q.High, "normal": q.Normal, "leased": q.Leased, "retry": q.Retry, "dead": q.Dead} {
			j.setDepth(state, n)
		}
	}
	if prev := j.lastDead.Swap(int64(q.Dead)); prev != int64(q.Dead) {
		j.log.Info("push dead-letter list", "dead", q.Dead, "was", prev)
	}
	return JobResult{Removed: st.Requeued + st.Forwarded, Queue: &q}, nil
}
