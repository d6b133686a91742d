package presence

import (
	"slices"
	"testing"
)

// OtherLiveNodes lists live instances of other node ids: not this node's
// own instances (a restart under the same NodeID), not dead ones.
func TestOtherLiveNodes(t *testing.T) {
	client, prefix := realRedis(t)
	ctx := ctxT(t)
	start := func(id string) *State {
		s := New(client, Config{KeyPrefix: prefix, NodeID: id})
		if err := s.Heartbeat(ctx); err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b, a2 := start("a"), start("b"), start("a")
	if got, err := a.OtherLiveNodes(ctx); err != nil || !slices.Equal(got, []string{b.Instance()}) {
		t.Fatalf("a sees %v, %v; want [%s]", got, err, b.Instance())
	}
	got, err := b.OtherLiveNodes(ctx)
	slices.Sort(got)
	want := []string{a.Instance(), a2.Instance()}
	slices.Sort(want)
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("b sees %v, %v; want %v", got, err, want)
	}
	if err := b.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := a.OtherLiveNodes(ctx); err != nil || len(got) != 0 {
		t.Fatalf("after b left, a sees %v, %v; want none", got, err)
	}
	if err := a.Heartbeat(ctx); err != nil || !slices.Contains(a.Dead(), b.Instance()) {
		t.Fatalf("after b left, a's heartbeat reports dead %v, %v; want b", a.Dead(), err)
	}
}
