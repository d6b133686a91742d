package redistest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Sentinel is a Redis Sentinel deployment on 127.0.0.1: one master, one
// replica and three sentinels (quorum 2), each a child process on a free
// port, without persistence. Down detection and failover are tuned to take
// a few seconds, so tests can fail over while clients work.
type Sentinel struct {
	MasterName    string
	SentinelAddrs []string
	// Master and Replica are the servers as started; after a failover their
	// roles swap (see CurrentMaster).
	Master, Replica *Server
	sentinels       []*Server
}

// Sentinel timings: a master is subjectively down after DownAfter without a
// valid PING reply. Short enough that a kill -9 fails over in about 5 s,
// long enough that a loaded 2-core machine does not fail over by itself.
const (
	SentinelDownAfter       = 2000 * time.Millisecond
	sentinelFailoverTimeout = 6000 * time.Millisecond
)

// StartSentinel starts the deployment and returns once it is ready to fail
// over: the replica is in sync and every sentinel knows the master, the
// replica and the two other sentinels. Everything is stopped when t ends.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	dir := t.TempDir()
	s := &Sentinel{MasterName: "chatstate-test"}
	// Announce 127.0.0.1 explicitly: sentinels hand these addresses to
	// clients, which must never be told a non-loopback interface.
	announce := []string{"--replica-announce-ip", "127.0.0.1", "--repl-diskless-sync-delay", "0"}
	var err error
	if s.Master, err = start(mkdir(t, dir, "master"), announce...); err != nil {
		t.Fatalf("redistest: sentinel master: %v", err)
	}
	t.Cleanup(s.Master.Stop)
	replicaArgs := append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(s.Master.Port)}, announce...)
	if s.Replica, err = start(mkdir(t, dir, "replica"), replicaArgs...); err != nil {
		t.Fatalf("redistest: sentinel replica: %v", err)
	}
	t.Cleanup(s.Replica.Stop)
	for i := range 3 {
		sdir := mkdir(t, dir, fmt.Sprintf("sentinel%d", i))
		// Sentinel rewrites its config file, so each gets its own.
		conf := filepath.Join(sdir, "sentinel.conf")
		body := fmt.Sprintf("sentinel announce-ip 127.0.0.1\n"+
			"sentinel monitor %[1]s 127.0.0.1 %[2]d 2\n"+
			"sentinel down-after-milliseconds %[1]s %[3]d\n"+
			"sentinel failover-timeout %[1]s %[4]d\n"+
			"sentinel parallel-syncs %[1]s 1\n",
			s.MasterName, s.Master.Port, SentinelDownAfter.Milliseconds(), sentinelFailoverTimeout.Milliseconds())
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		sn, err := startWith(sdir, conf, "--sentinel")
		if err != nil {
			t.Fatalf("redistest: sentinel %d: %v", i, err)
		}
		t.Cleanup(sn.Stop)
		s.sentinels = append(s.sentinels, sn)
		s.SentinelAddrs = append(s.SentinelAddrs, sn.Addr)
	}
	s.waitReady(t, s.Master, s.Replica, 30*time.Second)
	return s
}

// WaitReady waits until the deployment could fail over again: the current
// master has an in-sync replica that every sentinel knows (after a failover
// the old master must first be turned into a replica and resync).
func (s *Sentinel) WaitReady(t testing.TB, timeout time.Duration) {
	t.Helper()
	master, replica := s.Master, s.Replica
	if s.CurrentMaster() == s.Replica {
		master, replica = s.Replica, s.Master
	}
	s.waitReady(t, master, replica, timeout)
}

func mkdir(t testing.TB, parent, name string) string {
	d := filepath.Join(parent, name)
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// waitReady polls until replica is in sync with master and every sentinel
// names master, knows replica as a healthy replica and knows the other
// sentinels: only then can a failover be authorised and find a replica.
func (s *Sentinel) waitReady(t testing.TB, master, replica *Server, timeout time.Duration) {
	t.Helper()
	var why string
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if why = s.notReady(master, replica); why == "" {
			return
		}
		time.Sleep(50 * time.Millisecond) // polling for readiness with a deadline
	}
	t.Fatalf("redistest: sentinel deployment not ready within %v: %s", timeout, why)
}

func (s *Sentinel) notReady(master, replica *Server) string {
	info, err := command(replica.Addr, "INFO", "replication")
	if err != nil {
		return fmt.Sprintf("replica %s: %v", replica.Addr, err)
	}
	if str, _ := info.(string); !strings.Contains(str, "master_link_status:up") || !strings.Contains(str, "master_port:"+strconv.Itoa(master.Port)) {
		return fmt.Sprintf("replica %s not in sync with %s", replica.Addr, master.Addr)
	}
	for _, sn := range s.sentinels {
		addr, err := s.masterAddrFrom(sn.Addr)
		if err != nil || addr != master.Addr {
			return fmt.Sprintf("sentinel %s names master %q (%v), want %s", sn.Addr, addr, err, master.Addr)
		}
		replicas, err := command(sn.Addr, "SENTINEL", "REPLICAS", s.MasterName)
		if err != nil {
			return fmt.Sprintf("sentinel %s: %v", sn.Addr, err)
		}
		ok := false
		for _, r := range asMaps(replicas) {
			if r["name"] == replica.Addr && r["flags"] == "slave" && r["master-link-status"] == "ok" {
				ok = true
			}
		}
		if !ok {
			return fmt.Sprintf("sentinel %s does not know replica %s as healthy: %v", sn.Addr, replica.Addr, replicas)
		}
		others, err := command(sn.Addr, "SENTINEL", "SENTINELS", s.MasterName)
		if err != nil {
			return fmt.Sprintf("sentinel %s: %v", sn.Addr, err)
		}
		if n := len(asMaps(others)); n != len(s.sentinels)-1 {
			return fmt.Sprintf("sentinel %s knows %d other sentinels, want %d", sn.Addr, n, len(s.sentinels)-1)
		}
	}
	return ""
}

// masterAddrFrom asks one sentinel for the master's address.
func (s *Sentinel) masterAddrFrom(sentinel string) (string, error) {
	v, err := command(sentinel, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.MasterName)
	if err != nil {
		return "", err
	}
	hp, ok := v.([]any)
	if !ok || len(hp) != 2 {
		return "", fmt.Errorf("GET-MASTER-ADDR-BY-NAME: %v", v)
	}
	return fmt.Sprintf("%v:%v", hp[0], hp[1]), nil
}

// CurrentMaster returns the server every sentinel names as master and that
// says it is one (ROLE), or nil while they disagree.
func (s *Sentinel) CurrentMaster() *Server {
	var addr string
	for _, sn := range s.sentinels {
		a, err := s.masterAddrFrom(sn.Addr)
		if err != nil || (addr != "" && a != addr) {
			return nil
		}
		addr = a
	}
	for _, srv := range []*Server{s.Master, s.Replica} {
		if srv.Addr == addr {
			if role, err := command(addr, "ROLE"); err == nil {
				if r, ok := role.([]any); ok && len(r) > 0 && r[0] == "master" {
					return srv
				}
			}
		}
	}
	return nil
}

// WaitFailover polls until every sentinel names a master other than old,
// that server says it is master, and the other server replicates from it
// when it is alive (so a later failover could run). It returns the new
// master.
func (s *Sentinel) WaitFailover(t testing.TB, old *Server, timeout time.Duration) *Server {
	t.Helper()
	other := s.Master
	if old == s.Master {
		other = s.Replica
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if m := s.CurrentMaster(); m == other {
			return m
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
	t.Fatalf("redistest: no failover from %s to %s within %v", old.Addr, other.Addr, timeout)
	return nil
}

// Failover asks a sentinel for a failover (SENTINEL FAILOVER), as an
// operator does for maintenance; it returns without waiting for it.
func (s *Sentinel) Failover(t testing.TB) {
	t.Helper()
	v, err := command(s.SentinelAddrs[0], "SENTINEL", "FAILOVER", s.MasterName)
	if err != nil || v != "OK" {
		t.Fatalf("redistest: SENTINEL FAILOVER: %v %v", v, err)
	}
}

// Pid returns the process id of the server, or 0 once it was stopped.
func (s *Server) Pid() int {
	if s.proc == nil {
		return 0
	}
	return s.proc.Pid
}

// Kill sends SIGKILL to the server and waits for it to exit (a crash, as
// Stop is; named for tests that kill a master on purpose).
func (s *Server) Kill() { s.Stop() }

func asMaps(v any) []map[string]string {
	list, _ := v.([]any)
	var out []map[string]string
	for _, e := range list {
		kv, _ := e.([]any)
		m := make(map[string]string, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			m[fmt.Sprint(kv[i])] = fmt.Sprint(kv[i+1])
		}
		out = append(out, m)
	}
	return out
}
