package redisconn_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/chatstate/chatstate/internal/redisconn"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/redis/rueidis"
)

func TestMain(m *testing.M) { os.Exit(redistest.Run(m)) }

// TestSentinelFollowsFailover: a client opened from a Sentinel Config writes
// to the master, and after a failover (requested, or a kill -9 of the
// master) writes reach the new master without a restart; a dedicated
// (Pub/Sub) connection to a killed master reports it, so its owner knows to
// reconnect.
func TestSentinelFollowsFailover(t *testing.T) {
	for _, kill := range []bool{false, true} {
		name := map[bool]string{false: "SENTINEL_FAILOVER", true: "kill_master"}[kill]
		t.Run(name, func(t *testing.T) {
			s := redistest.StartSentinel(t)
			// As REDIS_SENTINEL_ADDRS / REDIS_SENTINEL_MASTER configure it.
			cfg := redisconn.Config{SentinelAddrs: s.SentinelAddrs, SentinelMaster: s.MasterName}
			ctx := redistest.Ctx(t)
			client, err := redisconn.Open(ctx, cfg, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(client.Close)
			key := redistest.Prefix(t) + "k"
			set := func(v string) error {
				ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				defer cancel()
				return client.Do(ctx, client.B().Set().Key(key).Value(v).Build()).Error()
			}
			if err := set("before"); err != nil {
				t.Fatal(err)
			}
			if addr := onlyNode(t, client); addr != s.Master.Addr {
				t.Fatalf("client talks to %s, want master %s", addr, s.Master.Addr)
			}
			sub, cancel := client.Dedicate()
			defer cancel()
			lost := sub.SetPubSubHooks(rueidis.PubSubHooks{OnMessage: func(rueidis.PubSubMessage) {}})
			if err := sub.Do(ctx, sub.B().Subscribe().Channel(key+":ch").Build()).Error(); err != nil {
				t.Fatal(err)
			}

			start := time.Now()
			if kill {
				s.Master.Kill()
			} else {
				s.Failover(t)
			}
			s.WaitFailover(t, s.Master, 30*time.Second)
			deadline := time.Now().Add(30 * time.Second)
			for {
				err := set("after")
				if err == nil && onlyNode(t, client) == s.Replica.Addr {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("writes do not reach the new master %s within 30s: %v (client on %s)", s.Replica.Addr, err, onlyNode(t, client))
				}
				time.Sleep(50 * time.Millisecond) // polling with a deadline
			}
			t.Logf("writes reach the new master after %v", time.Since(start))
			got, err := redistest.Command(s.Replica.Addr, "GET", key)
			if err != nil || got != "after" {
				t.Fatalf("new master has %q, %v", got, err)
			}
			if kill {
				// After SENTINEL FAILOVER rueidis leaves a dedicated
				// connection on the old master until Sentinel demotes it
				// (about 10 s); the gateway's hub moves its subscriber itself.
				select {
				case <-lost:
				case <-time.After(30 * time.Second):
					t.Fatal("the dedicated connection to the killed master was not closed")
				}
			}
		})
	}
}

func onlyNode(t *testing.T, c rueidis.Client) string {
	t.Helper()
	nodes := c.Nodes()
	if len(nodes) != 1 {
		t.Fatalf("sentinel client has %d nodes", len(nodes))
	}
	for addr := range nodes {
		return addr
	}
	return ""
}
