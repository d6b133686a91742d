package cache

import (
	"strconv"
	"testing"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/keys"
	"github.com/chatstate/chatstate/internal/keyscan"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/redis/rueidis"
)

// clusterRedis gives a cluster client of the package's 3-master Redis
// Cluster: every script must keep its keys in one slot, or Redis answers
// CROSSSLOT (and rueidis refuses to build the command).
func clusterRedis(t *testing.T) (rueidis.Client, string) { return redistest.StartClusterClient(t) }

func TestCacheCluster(t *testing.T) { testCache(t, clusterRedis) }

// mastersDBSize is the DBSIZE of every master of the cluster client.
func mastersDBSize(t *testing.T, e *env) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for addr, node := range e.client.Nodes() {
		res := node.DoMulti(e.ctx, node.B().Role().Build(), node.B().Dbsize().Build())
		_, err := res[0].ToArray()
		must(t, err)
		if keyscan.IsReplica(res[0]) {
			continue
		}
		n, err := res[1].AsInt64()
		must(t, err)
		out[addr] = n
	}
	return out
}

// SessionUsers walks every master, one SCAN page at a time, and Stats sums
// the masters: on a cluster client a bare SCAN or INFO reaches one node.
func TestClusterSessionUsersAndStats(t *testing.T) {
	e := newEnv(t, clusterRedis, Config{})
	want := map[string]bool{}
	for i := range 40 {
		u := "user" + strconv.Itoa(i)
		_, err := e.c.CreateSession(e.ctx, chatstate.Session{UserID: u, DeviceID: "d"})
		must(t, err)
		want[u] = true
	}
	holding := map[string]bool{}
	for u := range want {
		slot := keys.Slot(e.c.keys.Sessions(u))
		for addr, node := range e.client.Nodes() {
			n, err := node.Do(e.ctx, node.B().ClusterCountkeysinslot().Slot(int64(slot)).Build()).AsInt64()
			if err == nil && n > 0 {
				holding[addr] = true
			}
		}
	}
	if len(holding) != 3 {
		t.Fatalf("the 40 session keys live on %d masters, want all 3", len(holding))
	}

	seen := map[string]bool{}
	nodesVisited := map[uint64]bool{}
	var cursor uint64
	for i := 0; ; i++ {
		users, next, err := e.c.SessionUsers(e.ctx, cursor, 5)
		must(t, err)
		for _, u := range users {
			seen[u] = true
		}
		nodesVisited[cursor>>48] = true // keyscan: the top 16 bits name the master
		if cursor = next; cursor == 0 {
			break
		}
		if i > 10000 {
			t.Fatal("SessionUsers does not end")
		}
	}
	if len(seen) != len(want) || len(nodesVisited) != 3 {
		t.Fatalf("scan found %d of %d users over %d masters", len(seen), len(want), len(nodesVisited))
	}
	for u := range want {
		if !seen[u] {
			t.Fatalf("scan missed %s", u)
		}
	}

	// No test in this package writes concurrently, so the key count can only
	// fall (expiry) between the two samples around Stats.
	sum := func(m map[string]int64) (s int64) {
		for _, n := range m {
			s += n
		}
		return s
	}
	before := mastersDBSize(t, e)
	s, err := e.c.Stats(e.ctx)
	must(t, err)
	after := mastersDBSize(t, e)
	if len(before) != 3 || s.Keys > sum(before) || s.Keys < sum(after) {
		t.Fatalf("Stats.Keys = %d, masters' DBSIZE %v before, %v after", s.Keys, before, after)
	}
	if s.ConnectedClients < 3 || s.UsedMemory <= 0 || s.UsedMemoryHuman == "" || s.RedisVersion == "" || s.Info["cluster_enabled"] != "1" {
		t.Fatalf("stats %+v", s)
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 1023: "1023B", 1024: "1.00K", 1536: "1.50K", 3 << 20: "3.00M", 5 << 30: "5.00G"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// KeyKinds samples every master: the session keys of all three count.
func TestClusterKeyKinds(t *testing.T) {
	e := newEnv(t, clusterRedis, Config{})
	for i := range 30 {
		_, err := e.c.CreateSession(e.ctx, chatstate.Session{UserID: "kk" + strconv.Itoa(i), DeviceID: "d"})
		must(t, err)
	}
	s, err := e.c.KeyKinds(e.ctx, 0)
	must(t, err)
	if !s.Complete || s.Kinds["sessions"] != 30 || s.Sampled != 30 {
		t.Fatalf("sample %+v, want the 30 session keys", s)
	}
	s, err = e.c.KeyKinds(e.ctx, 5)
	must(t, err)
	if s.Complete || s.Sampled < 5 {
		t.Fatalf("bounded sample %+v, want it to stop early", s)
	}
}
