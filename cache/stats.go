package cache

import (
	"context"
	"strconv"
	"strings"

	"github.com/chatstate/chatstate/internal/keyscan"
	"github.com/redis/rueidis"
)

// Stats is a digest of Redis INFO for /redis/stats. Numbers a server does not
// report (restricted INFO, older versions, proxies) stay zero; Info holds
// every "name:value" line as sent.
type Stats struct {
	UsedMemory      int64  `json:"usedMemory"`
	UsedMemoryHuman string `json:"usedMemoryHuman,omitempty"`
	UsedMemoryPeak  int64  `json:"usedMemoryPeak"`
	UsedMemoryRSS   int64  `json:"usedMemoryRss"`
	MaxMemory       int64  `json:"maxMemory"` // 0: no limit
	MaxMemoryPolicy string `json:"maxMemoryPolicy,omitempty"`
	// Fragmentation is RSS / used memory (mem_fragmentation_ratio).
	Fragmentation    float64 `json:"fragmentation"`
	ConnectedClients int64   `json:"connectedClients"`
	Keys             int64   `json:"keys"`    // sum over all databases
	Expires          int64   `json:"expires"` // keys with a TTL, summed
	OpsPerSec        int64   `json:"opsPerSec"`
	KeyspaceHits     int64   `json:"keyspaceHits"`
	KeyspaceMisses   int64   `json:"keyspaceMisses"`
	HitRate          float64 `json:"hitRate"` // hits/(hits+misses), 0 when both are 0
	UptimeSeconds    int64   `json:"uptimeSeconds"`
	RedisVersion     string  `json:"redisVersion,omitempty"`

	Info map[string]string `json:"-"`
}

// Stats reads INFO (and DBSIZE, for servers whose INFO has no Keyspace
// section, such as miniredis) in one round trip; on a cluster client it
// sums the masters (see clusterStats), one round trip to each in parallel.
func (c *Cache) Stats(ctx context.Context) (Stats, error) {
	if c.client.Mode() == rueidis.ClientModeCluster {
		return c.clusterStats(ctx)
	}
	return nodeStats(ctx, c.client)
}

func nodeStats(ctx context.Context, client rueidis.Client) (Stats, error) {
	res := client.DoMulti(ctx, client.B().Info().Build(), client.B().Dbsize().Build())
	raw, err := res[0].ToString()
	if err != nil {
		return Stats{}, mapErr(err)
	}
	s := parseInfo(raw)
	if n, err := res[1].AsInt64(); err == nil && s.Keys == 0 {
		s.Keys = n
	}
	return s, nil
}

func parseInfo(raw string) Stats {
	s := Stats{Info: map[string]string{}}
	num := func(k string) int64 {
		n, _ := strconv.ParseInt(s.Info[k], 10, 64)
		return n
	}
	for _, line := range strings.Split(raw, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		s.Info[k] = v
		// Keyspace lines: db0:keys=1,expires=0,avg_ttl=0
		if isDBName(k) {
			for _, kv := range strings.Split(v, ",") {
				name, val, _ := strings.Cut(kv, "=")
				n, _ := strconv.ParseInt(val, 10, 64)
				switch name {
				case "keys":
					s.Keys += n
				case "expires":
					s.Expires += n
				}
			}
		}
	}
	s.UsedMemory = num("used_memory")
	s.UsedMemoryHuman = s.Info["used_memory_human"]
	s.UsedMemoryPeak = num("used_memory_peak")
	s.UsedMemoryRSS = num("used_memory_rss")
	s.MaxMemory = num("maxmemory")
	s.MaxMemoryPolicy = s.Info["maxmemory_policy"]
	s.Fragmentation, _ = strconv.ParseFloat(s.Info["mem_fragmentation_ratio"], 64)
	s.ConnectedClients = num("connected_clients")
	s.OpsPerSec = num("instantaneous_ops_per_sec")
	s.KeyspaceHits = num("keyspace_hits")
	s.KeyspaceMisses = num("keyspace_misses")
	s.UptimeSeconds = num("uptime_in_seconds")
	s.RedisVersion = s.Info["redis_version"]
	if total := s.KeyspaceHits + s.KeyspaceMisses; total > 0 {
		s.HitRate = float64(s.KeyspaceHits) / float64(total)
	}
	return s
}

func isDBName(k string) bool {
	if len(k) < 3 || k[:2] != "db" {
		return false
	}
	for i := 2; i < len(k); i++ {
		if k[i] < '0' || k[i] > '9' {
			return false
		}
	}
	return true
}

// KeySample counts keys per kind (keys.Kind) over at most a bounded number
// of keys under the prefix, walked with SCAN (never KEYS), on a Cluster
// over every master.
type KeySample struct {
	Sampled int `json:"sampled"`
	// Complete: the scan ended before the bound, so the counts are exact
	// (as of the walk).
	Complete bool           `json:"complete"`
	Kinds    map[string]int `json:"kinds"`
}

// KeyKinds samples up to max keys (zero means 10000).
func (c *Cache) KeyKinds(ctx context.Context, max int) (KeySample, error) {
	if max <= 0 {
		max = 10000
	}
	out := KeySample{Kinds: map[string]int{}}
	var cursor uint64
	for {
		batch, next, err := keyscan.Step(ctx, c.client, cursor, c.keys.Pattern(), "", int64(min(1000, max)))
		if err != nil {
			return out, mapErr(err)
		}
		for _, k := range batch {
			out.Kinds[c.keys.Kind(k)]++
		}
		out.Sampled += len(batch)
		if cursor = next; cursor == 0 {
			out.Complete = true
			return out, nil
		}
		if out.Sampled >= max {
			return out, nil
		}
	}
}
