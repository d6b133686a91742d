package cache

import (
	"context"
	"fmt"
	"sync"

	"github.com/chatstate/chatstate/internal/keyscan"
)

// On a cluster client, commands without a key (SCAN, INFO) reach one
// random node. SessionUsers (through internal/keyscan) and Stats therefore
// visit every master themselves.

// clusterSessionUsers is SessionUsers over every master (keyscan.Step).
func (c *Cache) clusterSessionUsers(ctx context.Context, cursor uint64, count int) ([]string, uint64, error) {
	keys, next, err := keyscan.Step(ctx, c.client, cursor, c.keys.SessionsPattern(), "hash", int64(count))
	if err != nil {
		return nil, 0, mapErr(err)
	}
	return c.sessionUsers(keys), next, nil
}

// clusterStats sums Stats over the masters (replicas hold copies of their
// masters' keys; a node whose INFO has no role counts as a master).
// RedisVersion, UptimeSeconds, MaxMemoryPolicy and Info come from the
// first master in address order; UsedMemoryHuman and Fragmentation are
// recomputed from the sums (a limit of 0 on any master makes MaxMemory a
// lower bound).
func (c *Cache) clusterStats(ctx context.Context) (Stats, error) {
	addrs, nodes := keyscan.Nodes(c.client)
	if len(addrs) == 1 {
		return nodeStats(ctx, nodes[addrs[0]])
	}
	per := make([]Stats, len(addrs))
	errs := make([]error, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Go(func() { per[i], errs[i] = nodeStats(ctx, nodes[a]) })
	}
	wg.Wait()
	var sum Stats
	first := true
	for i, s := range per {
		if errs[i] != nil {
			return Stats{}, errs[i]
		}
		if r := s.Info["role"]; r != "" && r != "master" {
			continue
		}
		if first {
			sum.Info, sum.RedisVersion, sum.UptimeSeconds = s.Info, s.RedisVersion, s.UptimeSeconds
			first = false
		}
		if sum.MaxMemoryPolicy == "" {
			sum.MaxMemoryPolicy = s.MaxMemoryPolicy
		}
		sum.UsedMemory += s.UsedMemory
		sum.UsedMemoryPeak += s.UsedMemoryPeak
		sum.UsedMemoryRSS += s.UsedMemoryRSS
		sum.MaxMemory += s.MaxMemory
		sum.ConnectedClients += s.ConnectedClients
		sum.Keys += s.Keys
		sum.Expires += s.Expires
		sum.OpsPerSec += s.OpsPerSec
		sum.KeyspaceHits += s.KeyspaceHits
		sum.KeyspaceMisses += s.KeyspaceMisses
	}
	if total := sum.KeyspaceHits + sum.KeyspaceMisses; total > 0 {
		sum.HitRate = float64(sum.KeyspaceHits) / float64(total)
	}
	if sum.UsedMemory > 0 {
		sum.Fragmentation = float64(sum.UsedMemoryRSS) / float64(sum.UsedMemory)
	}
	sum.UsedMemoryHuman = humanBytes(sum.UsedMemory)
	return sum, nil
}

// humanBytes formats n as Redis' used_memory_human does.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	f, i := float64(n)/unit, 0
	for f >= unit && i < 4 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.2f%c", f, "KMGTP"[i])
}
