package redisconn_test

import (
	"testing"
	"time"

	"github.com/chatstate/chatstate/internal/redisconn"
	"github.com/chatstate/chatstate/internal/redistest"
)

// Ping on a Cluster reports a cluster that lost a master (no replica to
// take over) as down, although every surviving node still answers PING.
func TestPingReportsAClusterThatServesNothing(t *testing.T) {
	c := redistest.StartCluster(t)
	client := c.Client(t)
	ctx := redistest.Ctx(t)
	if err := redisconn.Ping(ctx, client); err != nil {
		t.Fatalf("healthy cluster: %v", err)
	}
	victim := c.MasterOf(t, "{c:ping}")
	victim.Kill()
	deadline := time.Now().Add(20 * time.Second)
	for redisconn.Ping(ctx, client) == nil {
		if time.Now().After(deadline) {
			t.Fatal("Ping still healthy 20 s after a master without a replica died")
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
	for _, addr := range c.Addrs {
		if addr == victim.Addr {
			continue
		}
		if v, err := redistest.Command(addr, "PING"); err != nil || v != "PONG" {
			t.Fatalf("surviving node %s: PING %v %v; the test assumes it still answers", addr, v, err)
		}
	}
	// A standalone server is a plain PING.
	single, _ := redistest.Start(t)
	if err := redisconn.Ping(ctx, single); err != nil {
		t.Fatalf("standalone: %v", err)
	}
}
