package cleanup

import (
	"context"

	"github.com/chatstate/chatstate/cache"
	"github.com/chatstate/chatstate/presence"
	"github.com/chatstate/chatstate/pushqueue"
)

// QueueStats is the push queue's depth per state.
type QueueStats struct {
	High   int `json:"high"`   // waiting, high priority
	Normal int `json:"normal"` // waiting, normal priority
	Leased int `json:"leased"` // claimed by a worker
	Retry  int `json:"retry"`  // waiting for a retry
	Dead   int `json:"dead"`   // dead-letter list
	// OldestAgeMs is the age of the oldest waiting job, 0 when none.
	OldestAgeMs int64 `json:"oldestAgeMs"`
}

func queueStats(s pushqueue.Stats) QueueStats {
	return QueueStats{High: s.High, Normal: s.Normal, Leased: s.Leased, Retry: s.Retry, Dead: s.Dead, OldestAgeMs: s.OldestAgeMs}
}

// Report is the design's logRedisStats, for GET /redis/stats and the
// periodic stats log.
type Report struct {
	// Redis is the INFO digest: used and peak memory, maxmemory and its
	// policy, fragmentation, key counts (on a Cluster summed over the
	// masters).
	Redis *cache.Stats `json:"redis,omitempty"`
	// Keys counts keys per kind over a bounded SCAN sample.
	Keys *cache.KeySample `json:"keys,omitempty"`
	// OnlineUsers is the number of connected users (invisible included).
	OnlineUsers int `json:"onlineUsers"`
	// Typing counts typing entries (over a bounded number of
	// conversations).
	Typing *presence.TypingCount `json:"typing,omitempty"`
	// Nodes are the live node instances with their connections at their
	// last heartbeat; Connections is their sum.
	Nodes       []presence.Node `json:"nodes"`
	Connections int             `json:"connections"`
	PushQueue   *QueueStats     `json:"pushQueue,omitempty"`
}

// typingSample bounds the conversations Stats counts typing entries of.
const typingSample = 1000

// Stats reads the Report; it changes nothing.
func (c *Cleaner) Stats(ctx context.Context) (Report, error) {
	r := Report{Nodes: []presence.Node{}}
	if rc := c.deps.Cache; rc != nil {
		st, err := rc.Stats(ctx)
		if err != nil {
			return r, err
		}
		r.Redis = &st
		ks, err := rc.KeyKinds(ctx, c.cfg.KeySample)
		if err != nil {
			return r, err
		}
		r.Keys = &ks
	}
	if p := c.deps.Presence; p != nil {
		var err error
		if r.OnlineUsers, err = p.OnlineCount(ctx); err != nil {
			return r, err
		}
		tc, err := p.TypingEntries(ctx, typingSample)
		if err != nil {
			return r, err
		}
		r.Typing = &tc
		if r.Nodes, err = p.Nodes(ctx); err != nil {
			return r, err
		}
		for _, n := range r.Nodes {
			r.Connections += n.Connections
		}
	}
	if q := c.deps.Queue; q != nil {
		st, err := q.Stats(ctx)
		if err != nil {
			return r, err
		}
		qs := queueStats(st)
		r.PushQueue = &qs
	}
	return r, nil
}
