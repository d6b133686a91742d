package redistest

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Run(m)) }

func TestStartAndRestart(t *testing.T) {
	c, prefix := Start(t)
	ctx := Ctx(t)
	if err := c.Do(ctx, c.B().Set().Key(prefix+"k").Value("v").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	if Shared(t).Port == 6379 {
		t.Fatal("must never use the shared 6379")
	}
	s := StartServer(t)
	c2 := s.Client(t)
	if err := c2.Do(ctx, c2.B().Set().Key("x").Value("1").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	s.Restart(t)
	v, err := c2.Do(ctx, c2.B().Get().Key("x").Build()).ToString()
	if err == nil || v != "" {
		t.Fatalf("after restart want empty dataset, got %q, %v", v, err)
	}
}
