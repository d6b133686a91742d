package cache

import (
	"context"
	"strconv"
	"strings"

	"github.com/redis/rueidis"
)

// Stats is a digest of Redis INFO for /redis/stats. Numbers a server does not
// report (restricted INFO, older versions, proxies) stay zero; Info holds
// every "name:value" line as sent.
type Stats struct {
	UsedMemory       int64   `json:"usedMemory"`
	UsedMemoryHuman  string  `json:"usedMemoryHuman,omitempty"`
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
