package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/chatstate/chatstate/internal/mongotest"
	"github.com/chatstate/chatstate/internal/redistest"
)

// Two gateway processes find their Redis through three sentinels and share
// one MongoDB-wire store; the official client sends across them
// (testdata/e2e/sentinel.test.mjs). The failover scenarios check that every
// acknowledged message is stored once and reaches every member device live
// or by messages:sync, that both nodes resubscribe on the new master (resync,
// then a live delivery), and what /redis/health reports meanwhile.

func TestSentinelGateway(t *testing.T)    { runSentinelScenario(t, "basic") }
func TestSentinelFailover(t *testing.T)   { runSentinelScenario(t, "failover") }
func TestSentinelKillMaster(t *testing.T) { runSentinelScenario(t, "kill") }

func runSentinelScenario(t *testing.T, scenario string) {
	s := redistest.StartSentinel(t)
	env := map[string]string{
		"REDIS_SENTINEL_ADDRS":  strings.Join(s.SentinelAddrs, ","),
		"REDIS_SENTINEL_MASTER": s.MasterName,
		"CHATSTATE_KEY_PREFIX":  redistest.Prefix(t),
		"CHATSTATE_JWT_SECRET":  "e2e-secret",
		"CHATSTATE_API_KEY":     "e2e-api-key",
		// The senders pace themselves; the limit is not under test here.
		"CHATSTATE_MESSAGE_RATE_LIMIT": "100000",
		"CHATSTATE_LOG_LEVEL":          "warn",
		"MONGODB_URI":                  mongotest.Start(t),
	}
	var gws []*gatewayProc
	for _, id := range []string{"a", "b"} {
		e := map[string]string{"CHATSTATE_NODE_ID": "node-" + id}
		for k, v := range env {
			e[k] = v
		}
		gws = append(gws, startGateway(t, e))
	}
	runNodeTests(t, []string{
		"GATEWAY_A=" + gws[0].URL, "GATEWAY_B=" + gws[1].URL,
		"CHATSTATE_API_KEY=" + env["CHATSTATE_API_KEY"], "CHATSTATE_JWT_SECRET=" + env["CHATSTATE_JWT_SECRET"],
		"SCENARIO=" + scenario,
		"SENTINEL_ADDRS=" + env["REDIS_SENTINEL_ADDRS"], "SENTINEL_MASTER=" + s.MasterName,
		"OLD_MASTER_ADDR=" + s.Master.Addr, "NEW_MASTER_ADDR=" + s.Replica.Addr, fmt.Sprintf("MASTER_PID=%d", s.Master.Pid()),
	}, "sentinel.test.mjs")
	if scenario != "basic" {
		// The client saw the switch; the sentinels agree it happened.
		if m := s.CurrentMaster(); m != s.Replica {
			t.Fatalf("after the %s the master is %v, want %s", scenario, m, s.Replica.Addr)
		}
	}
}
