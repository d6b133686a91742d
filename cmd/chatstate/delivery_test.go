package main

import (
	"fmt"
	"testing"

	"github.com/chatstate/chatstate/internal/redistest"
)

// TestDelivery runs the seq invariant's fault-injection tests
// (testdata/e2e/delivery.test.mjs, docs/delivery.md) against three gateway
// processes sharing one redis-server and one MongoDB-wire store: gateway A
// holds one persist until the test releases it, gateway C holds one and is
// killed while it does.
func TestDelivery(t *testing.T) {
	redis := redistest.StartServer(t)
	env := faultEnv(t, redis)
	nodes := map[string]map[string]string{
		// A's held seq must not time out while the test holds it.
		"a": {"CHATSTATE_TEST_HOLD_PERSIST": holdContent, "CHATSTATE_SETTLE_TIMEOUT": "60s"},
		"b": {},
		// C dies holding a seq: the others skip it after 1 s.
		"c": {"CHATSTATE_TEST_HOLD_PERSIST": dieContent, "CHATSTATE_SETTLE_TIMEOUT": "1s"},
	}
	nodeEnv := []string{"CHATSTATE_API_KEY=" + env["CHATSTATE_API_KEY"], "CHATSTATE_JWT_SECRET=" + env["CHATSTATE_JWT_SECRET"],
		"HOLD_CONTENT=" + holdContent, "DIE_CONTENT=" + dieContent}
	var c *gatewayProc
	for _, id := range []string{"a", "b", "c"} {
		dir := t.TempDir()
		e := map[string]string{"CHATSTATE_NODE_ID": "node-" + id, "CHATSTATE_TEST_DIR": dir}
		for k, v := range env {
			e[k] = v
		}
		for k, v := range nodes[id] {
			e[k] = v
		}
		g := startGateway(t, e)
		up := map[string]string{"a": "A", "b": "B", "c": "C"}[id]
		nodeEnv = append(nodeEnv, "GATEWAY_"+up+"="+g.URL, "DIR_"+up+"="+dir)
		c = g
	}
	nodeEnv = append(nodeEnv, fmt.Sprintf("GATEWAY_C_PID=%d", c.cmd.Process.Pid))
	runNodeTests(t, nodeEnv, "delivery.test.mjs")
	c.cmd.Wait() // killed on purpose
}

const (
	holdContent = "held persist"
	dieContent  = "node dies holding this"
)
