// Package keyscan walks keys with SCAN, never KEYS, on every client mode.
// On a cluster client a command without a key reaches one random node, so
// Step visits every master in turn itself: the cursor's top 16 bits name
// the master (in address order), the low 48 bits are that master's own
// SCAN cursor (bounded by its hash table size, far below 2^48). Replicas
// are skipped: their keys are their master's.
//
// If the topology changes during an iteration (resharding, failover), keys
// may be missed or returned twice until the next full pass; callers are
// periodic sweeps and sampled statistics, for which that only delays a key.
package keyscan

import (
	"context"
	"fmt"
	"sort"

	"github.com/redis/rueidis"
)

const clusterCursorShift = 48

// Step is one SCAN step: start with cursor 0 and stop when the returned
// cursor is 0. match is a MATCH pattern, typ a TYPE filter ("" for any),
// count the COUNT hint. A key may be returned more than once. Errors are
// Redis errors as they came (callers map them with luascript.Err).
func Step(ctx context.Context, client rueidis.Client, cursor uint64, match, typ string, count int64) ([]string, uint64, error) {
	if client.Mode() != rueidis.ClientModeCluster {
		e, err := client.Do(ctx, scan(client, cursor, match, typ, count)).AsScanEntry()
		if err != nil {
			return nil, 0, err
		}
		return e.Elements, e.Cursor, nil
	}
	addrs, nodes := Nodes(client)
	idx, nodeCursor := int(cursor>>clusterCursorShift), cursor&(1<<clusterCursorShift-1)
	for ; idx < len(addrs); idx, nodeCursor = idx+1, 0 {
		node := nodes[addrs[idx]]
		res := node.DoMulti(ctx, node.B().Role().Build(), scan(node, nodeCursor, match, typ, count))
		if IsReplica(res[0]) {
			continue
		}
		e, err := res[1].AsScanEntry()
		if err != nil {
			return nil, 0, err
		}
		if e.Cursor>>clusterCursorShift != 0 {
			return nil, 0, fmt.Errorf("keyscan: SCAN cursor %d of %s does not fit in 48 bits", e.Cursor, addrs[idx])
		}
		switch {
		case e.Cursor != 0:
			return e.Elements, uint64(idx)<<clusterCursorShift | e.Cursor, nil
		case idx+1 < len(addrs):
			return e.Elements, uint64(idx+1) << clusterCursorShift, nil
		default:
			return e.Elements, 0, nil
		}
	}
	return nil, 0, nil
}

func scan(c rueidis.Client, cursor uint64, match, typ string, count int64) rueidis.Completed {
	s := c.B().Scan().Cursor(cursor).Match(match).Count(count)
	if typ != "" {
		return s.Type(typ).Build()
	}
	return s.Build()
}

// Nodes returns a cluster client's nodes in address order, so an index
// names the same node from one Step to the next while the topology is
// unchanged.
func Nodes(client rueidis.Client) ([]string, map[string]rueidis.Client) {
	nodes := client.Nodes()
	addrs := make([]string, 0, len(nodes))
	for a := range nodes {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	return addrs, nodes
}

// IsReplica reads a ROLE reply. A server without ROLE (miniredis, which
// rueidis also drives as a one-node cluster) counts as a master.
func IsReplica(role rueidis.RedisResult) bool {
	arr, err := role.ToArray()
	if err != nil || len(arr) == 0 {
		return false
	}
	r, _ := arr[0].ToString()
	return r != "master"
}
