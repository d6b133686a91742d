package cleanup

import "context"

// statsLog logs the Report at info level (the design's logRedisStats),
// on one node per interval.
type statsLog struct{ c *Cleaner }

func (j statsLog) round(ctx context.Context) (JobResult, error) {
	r, err := j.c.Stats(ctx)
	if err != nil {
		return JobResult{}, err
	}
	var attrs []any
	if s := r.Redis; s != nil {
		attrs = append(attrs, "usedMemory", s.UsedMemory, "usedMemoryPeak", s.UsedMemoryPeak, "maxMemory", s.MaxMemory,
			"maxMemoryPolicy", s.MaxMemoryPolicy, "fragmentation", s.Fragmentation, "keys", s.Keys)
	}
	if k := r.Keys; k != nil {
		attrs = append(attrs, "keysPerKind", k.Kinds, "keysSampled", k.Sampled, "keysComplete", k.Complete)
	}
	attrs = append(attrs, "onlineUsers", r.OnlineUsers, "nodes", len(r.Nodes), "connections", r.Connections)
	if t := r.Typing; t != nil {
		attrs = append(attrs, "typing", t.Live)
	}
	if q := r.PushQueue; q != nil {
		attrs = append(attrs, "pushHigh", q.High, "pushNormal", q.Normal, "pushLeased", q.Leased, "pushRetry", q.Retry,
			"pushDead", q.Dead, "pushOldestAgeMs", q.OldestAgeMs)
	}
	j.c.log.Info("redis stats", attrs...)
	return JobResult{}, nil
}
