package cache

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/redis/rueidis"
)

// On a cluster client, commands without a key (SCAN, INFO) reach one
// random node. SessionUsers and Stats therefore visit every master
// themselves; the helpers below are only used in cluster mode.

// clusterCursorShift splits a SessionUsers cursor on a cluster into the
// index of the master being scanned (high 16 bits) and that master's own
// SCAN cursor (low 48 bits). A SCAN cursor is bounded by the size of the
// node's hash table, far below 2^48.
const clusterCursorShift = 48

// clusterNodes returns the cluster's nodes in address order, so an index
// names the same node from one SessionUsers call to the next while the
// topology is unchanged.
func clusterNodes(client rueidis.Client) ([]string, map[string]rueidis.Client) {
	nodes := client.Nodes()
	addrs := make([]string, 0, len(nodes))
	for a := range nodes {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	return addrs, nodes
}

// clusterSessionUsers is SessionUsers over every master: it scans the
// master at the cursor's index, and moves to the next one when that SCAN
// ends. Replicas are skipped (their keys are their master's). If the
// topology changes during an iteration (resharding, failover), keys may be
// missed or returned twice until the next full pass; the cleanup job runs
// passes periodically, so that only delays a sweep.
func (c *Cache) clusterSessionUsers(ctx context.Context, cursor uint64, count int) ([]string, uint64, error) {
	addrs, nodes := clusterNodes(c.client)
	idx, nodeCursor := int(cursor>>clusterCursorShift), cursor&(1<<clusterCursorShift-1)
	for ; idx < len(addrs); idx, nodeCursor = idx+1, 0 {
		node := nodes[addrs[idx]]
		res := node.DoMulti(ctx, node.B().Role().Build(), node.B().Scan().Cursor(nodeCursor).
			Match(c.keys.SessionsPattern()).Count(int64(count)).Type("hash").Build())
		if isReplica(res[0]) {
			continue
		}
		e, err := res[1].AsScanEntry()
		if err != nil {
			return nil, 0, mapErr(err)
		}
		if e.Cursor>>clusterCursorShift != 0 {
			return nil, 0, fmt.Errorf("cache: SCAN cursor %d of %s does not fit in 48 bits", e.Cursor, addrs[idx])
		}
		users := c.sessionUsers(e.Elements)
		switch {
		case e.Cursor != 0:
			return users, uint64(idx)<<clusterCursorShift | e.Cursor, nil
		case idx+1 < len(addrs):
			return users, uint64(idx+1) << clusterCursorShift, nil
		default:
			return users, 0, nil
		}
	}
	return nil, 0, nil
}

// clusterStats sums Stats over the masters (replicas hold copies of their
// masters' keys; a node whose INFO has no role counts as a master).
// RedisVersion, UptimeSeconds and Info come from the first
// master in address order; UsedMemoryHuman is recomputed from the sum.
func (c *Cache) clusterStats(ctx context.Context) (Stats, error) {
	addrs, nodes := clusterNodes(c.client)
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
		sum.UsedMemory += s.UsedMemory
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
	sum.UsedMemoryHuman = humanBytes(sum.UsedMemory)
	return sum, nil
}

// isReplica reads a ROLE reply. A server without ROLE (miniredis, which
// rueidis also drives as a one-node cluster) counts as a master.
func isReplica(role rueidis.RedisResult) bool {
	arr, err := role.ToArray()
	if err != nil || len(arr) == 0 {
		return false
	}
	r, _ := arr[0].ToString()
	return r != "master"
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
