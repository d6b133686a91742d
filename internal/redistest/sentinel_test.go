package redistest

import (
	"testing"
	"time"
)

func TestSentinelFailover(t *testing.T) {
	s := StartSentinel(t)
	for _, p := range []int{s.Master.Port, s.Replica.Port} {
		if p == 6379 {
			t.Fatal("must never use 6379")
		}
	}
	if m := s.CurrentMaster(); m != s.Master {
		t.Fatalf("current master %v, want %s", m, s.Master.Addr)
	}
	start := time.Now()
	s.Failover(t)
	if m := s.WaitFailover(t, s.Master, 30*time.Second); m != s.Replica {
		t.Fatalf("after SENTINEL FAILOVER master is %s", m.Addr)
	}
	t.Logf("SENTINEL FAILOVER took %v", time.Since(start))
}

func TestSentinelKillMaster(t *testing.T) {
	s := StartSentinel(t)
	pid := s.Master.Pid()
	start := time.Now()
	s.Master.Kill()
	if s.Master.Pid() != 0 || pid == 0 {
		t.Fatalf("pid %d before kill, %d after", pid, s.Master.Pid())
	}
	if m := s.WaitFailover(t, s.Master, 30*time.Second); m != s.Replica {
		t.Fatalf("after kill -9 master is %s", m.Addr)
	}
	t.Logf("failover after kill -9 took %v", time.Since(start))
}
