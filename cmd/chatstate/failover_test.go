package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chatstate/chatstate/internal/keys"
	"github.com/chatstate/chatstate/internal/redistest"
)

// Two gateway processes find their Redis through three sentinels (or a
// Cluster's nodes) and share one MongoDB-wire store; the official client
// sends across them (testdata/e2e/failover.test.mjs). The failover
// scenarios check that every acknowledged message is stored once and
// reaches every member device live or by messages:sync, that both nodes
// resubscribe on the new master (resync, then a live delivery), and what
// /redis/health reports meanwhile.

func TestSentinelGateway(t *testing.T)    { runSentinelScenario(t, "basic") }
func TestSentinelFailover(t *testing.T)   { runSentinelScenario(t, "failover") }
func TestSentinelKillMaster(t *testing.T) { runSentinelScenario(t, "kill") }

func runSentinelScenario(t *testing.T, scenario string) {
	s := redistest.StartSentinel(t)
	vars := startTwoGateways(t, map[string]string{
		"REDIS_SENTINEL_ADDRS":  strings.Join(s.SentinelAddrs, ","),
		"REDIS_SENTINEL_MASTER": s.MasterName,
	})
	runNodeTests(t, append(vars, "SCENARIO="+scenario,
		"SENTINEL_ADDRS="+strings.Join(s.SentinelAddrs, ","), "SENTINEL_MASTER="+s.MasterName,
		"OLD_MASTER_ADDR="+s.Master.Addr, "NEW_MASTER_ADDR="+s.Replica.Addr, fmt.Sprintf("MASTER_PID=%d", s.Master.Pid()),
	), "failover.test.mjs")
	if scenario != "basic" {
		// The client saw the switch; the sentinels agree it happened.
		if m := s.CurrentMaster(); m != s.Replica {
			t.Fatalf("after the %s the master is %v, want %s", scenario, m, s.Replica.Addr)
		}
	}
}

// TestClusterKillMaster kills -9 a master of a Cluster with replicas while
// clients send, in two conversations it serves and two it does not; its
// replica takes over (cluster-node-timeout 2 s).
func TestClusterKillMaster(t *testing.T) {
	c := redistest.StartClusterWithReplicas(t)
	killed := c.MasterOf(t, "{c:cf-0}")
	replica := c.ReplicaOf(t, killed)
	on := runClusterScenario(t, c, killed, "cluster-kill", func([]string) []string {
		return []string{"NEW_MASTER_ADDR=" + replica.Addr, fmt.Sprintf("MASTER_PID=%d", killed.Pid())}
	})
	if m := c.MasterOf(t, "{c:"+on[0]+"}"); m != replica {
		t.Fatalf("after the kill %s serves %s, want its replica %s", m.Addr, on[0], replica.Addr)
	}
}

// TestClusterReshard moves the slots of two of the four conversations, keys
// and all, to another master while clients send, as a resharding does.
func TestClusterReshard(t *testing.T) {
	c := redistest.StartCluster(t)
	from := c.MasterOf(t, "{c:cf-0}")
	var to *redistest.Server
	for _, m := range c.Masters(t) {
		if m != from {
			to = m
			break
		}
	}
	var slots []string
	on := runClusterScenario(t, c, from, "cluster-reshard", func(on []string) []string {
		for _, id := range on {
			slots = append(slots, fmt.Sprint(keys.Slot("{c:"+id+"}")))
		}
		return []string{"OLD_MASTER_ADDR=" + from.Addr, "NEW_MASTER_ADDR=" + to.Addr, "RESHARD_SLOTS=" + strings.Join(slots, ","),
			"CLUSTER_ADDRS=" + strings.Join(c.Addrs, ",")}
	})
	for _, id := range on {
		if m := c.MasterOf(t, "{c:"+id+"}"); m != to {
			t.Fatalf("after the resharding %s serves %s, want %s", m.Addr, id, to.Addr)
		}
	}
}

// runClusterScenario runs failover.test.mjs's scenario against two gateways
// on c, with four conversations of which two (returned) are served by
// master; extra returns more of the script's environment from those two.
func runClusterScenario(t *testing.T, c *redistest.Cluster, master *redistest.Server, scenario string, extra func(on []string) []string) []string {
	t.Helper()
	var on, off []string
	for i := 0; len(on) < 2 || len(off) < 2; i++ {
		id := fmt.Sprintf("cf-%d", i)
		if c.MasterOf(t, "{c:"+id+"}") == master {
			if len(on) < 2 {
				on = append(on, id)
			}
		} else if len(off) < 2 {
			off = append(off, id)
		}
	}
	vars := append(startTwoGateways(t, map[string]string{"REDIS_CLUSTER_ADDRS": strings.Join(c.Addrs, ",")}),
		"SCENARIO="+scenario, "CONV_IDS="+strings.Join([]string{on[0], off[0], on[1], off[1]}, ","))
	runNodeTests(t, append(vars, extra(on)...), "failover.test.mjs")
	return on
}
