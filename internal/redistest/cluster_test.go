package redistest

import (
	"strings"
	"testing"

	"github.com/chatstate/chatstate/internal/keys"
)

// The cluster really is one: keys spread over the three masters by slot, the
// client routes to the right one, and a script over two slots is refused,
// so the cluster tests of other packages can catch a cross-slot script.
func TestCluster(t *testing.T) {
	c := SharedCluster(t)
	if len(c.Addrs) != 3 {
		t.Fatalf("addrs %v", c.Addrs)
	}
	for _, a := range c.Addrs {
		if strings.HasSuffix(a, ":6379") {
			t.Fatal("must never use the shared 6379")
		}
	}
	client, prefix := StartClusterClient(t)
	ctx := Ctx(t)
	for _, id := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		key := prefix + "k:{u:" + id + "}"
		if err := client.Do(ctx, client.B().Set().Key(key).Value(id).Build()).Error(); err != nil {
			t.Fatal(err)
		}
		slot, err := client.Do(ctx, client.B().ClusterKeyslot().Key(key).Build()).AsInt64()
		if err != nil || uint16(slot) != keys.Slot(key) {
			t.Fatalf("CLUSTER KEYSLOT %s = %d %v, keys.Slot says %d", key, slot, err, keys.Slot(key))
		}
	}
	// Each master holds some of the keys (8 tags over 3 equal slot ranges).
	holding := 0
	for addr, node := range client.Nodes() {
		n, err := node.Do(ctx, node.B().Dbsize().Build()).AsInt64()
		if err != nil {
			t.Fatalf("%s: %v", addr, err)
		}
		if n > 0 {
			holding++
		}
	}
	if holding < 2 {
		t.Fatalf("keys landed on %d node(s), want a spread", holding)
	}
	k1, k2 := prefix+"x:{u:a}", prefix+"x:{u:b}"
	if keys.Slot(k1) == keys.Slot(k2) {
		t.Fatal("test keys share a slot")
	}
	// rueidis' builder panics on cross-slot keys, so send it unchecked to
	// every node: the server itself must refuse it.
	for addr, node := range client.Nodes() {
		err := node.Do(ctx, node.B().Arbitrary("EVAL").
			Args("return redis.call('MSET', KEYS[1], 1, KEYS[2], 2)", "2", k1, k2).Build()).Error()
		if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
			t.Fatalf("%s: cross-slot EVAL: want CROSSSLOT, got %v", addr, err)
		}
	}
}
