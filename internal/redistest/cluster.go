package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatstate/chatstate/internal/keys"
	"github.com/redis/rueidis"
)

// Cluster is a Redis Cluster of three masters (and, from
// StartClusterWithReplicas, one replica each), each a redis-server child
// process on a free port of 127.0.0.1.
type Cluster struct {
	Addrs []string // every node, masters first
	nodes []*Server
	dir   string
}

var (
	sharedClusterOnce sync.Once
	sharedCluster     *Cluster
	sharedClusterErr  error
)

// StartCluster starts a dedicated cluster, stopped when t ends.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	c, err := startCluster(t.TempDir(), 0)
	if err != nil {
		t.Fatalf("redistest: cluster: %v", err)
	}
	t.Cleanup(c.Stop)
	return c
}

// StartClusterWithReplicas starts a dedicated cluster of three masters with
// one replica each, for failover tests; it is stopped when t ends. It
// returns once every replica is in sync with its master.
func StartClusterWithReplicas(t testing.TB) *Cluster {
	t.Helper()
	c, err := startCluster(t.TempDir(), 1)
	if err != nil {
		t.Fatalf("redistest: cluster: %v", err)
	}
	t.Cleanup(c.Stop)
	return c
}

// SharedCluster returns the package-wide cluster, starting it on first use;
// Run stops it. Tests isolate by key prefix (Prefix), as on Shared.
func SharedCluster(t testing.TB) *Cluster {
	t.Helper()
	sharedClusterOnce.Do(func() {
		dir, err := os.MkdirTemp("", "redistest-cluster-")
		if err != nil {
			sharedClusterErr = err
			return
		}
		sharedCluster, sharedClusterErr = startCluster(dir, 0)
		if sharedClusterErr != nil {
			os.RemoveAll(dir)
		}
	})
	if sharedClusterErr != nil {
		t.Fatalf("redistest: cluster: %v", sharedClusterErr)
	}
	return sharedCluster
}

// StartClusterClient returns a cluster client of the shared cluster and a
// key prefix unique to t.
func StartClusterClient(t testing.TB) (rueidis.Client, string) {
	t.Helper()
	return SharedCluster(t).Client(t), Prefix(t)
}

// Client returns a rueidis cluster client of c, closed when t ends.
func (c *Cluster) Client(t testing.TB) rueidis.Client {
	t.Helper()
	cl, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: c.Addrs, DisableCache: true})
	if err != nil {
		t.Fatalf("redistest: cluster client: %v", err)
	}
	t.Cleanup(cl.Close)
	if n := len(cl.Nodes()); n != len(c.Addrs) {
		t.Fatalf("redistest: cluster client sees %d nodes, want %d (not a cluster client?)", n, len(c.Addrs))
	}
	return cl
}

// Stop kills every node.
func (c *Cluster) Stop() {
	for _, n := range c.nodes {
		n.Stop()
	}
}

func (c *Cluster) stopAndRemove() {
	c.Stop()
	os.RemoveAll(c.dir)
}

func startCluster(dir string, replicas int) (c *Cluster, err error) {
	for _, bin := range []string{"redis-server", "redis-cli"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("%s not found on PATH: %w", bin, err)
		}
	}
	c = &Cluster{dir: dir}
	started := c // c is nil once an error is returned
	defer func() {
		if err != nil {
			started.Stop()
		}
	}()
	for i := 0; i < 3*(1+replicas); i++ {
		n, err := startClusterNode(dir)
		if err != nil {
			return nil, err
		}
		c.nodes = append(c.nodes, n)
		c.Addrs = append(c.Addrs, n.Addr)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "redis-cli", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("redis-cli --cluster create: %v: %s", err, out)
	}
	// redis-cli returns once the configuration is consistent; every node
	// still has to agree that all slots are served before clients route.
	deadline := time.Now().Add(20 * time.Second)
	for _, addr := range c.Addrs {
		for {
			info, err := clusterInfo(addr)
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("node %s not cluster_state:ok within 20s: %q %v", addr, info, err)
			}
			time.Sleep(20 * time.Millisecond) // polling for readiness with a deadline
		}
	}
	// A replica can take over only once it has synced with its master.
	for _, n := range c.nodes {
		for {
			role, err := command(n.Addr, "ROLE")
			r, _ := role.([]any)
			if err == nil && len(r) > 0 && (r[0] == "master" || len(r) >= 4 && r[3] == "connected") {
				break
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("node %s not a master or a synced replica within 20s: %v %v", n.Addr, role, err)
			}
			time.Sleep(20 * time.Millisecond) // polling for readiness with a deadline
		}
	}
	return c, nil
}

// MasterOf returns the master that serves key's slot now.
func (c *Cluster) MasterOf(t testing.TB, key string) *Server {
	t.Helper()
	slot := int64(keys.Slot(key))
	for _, n := range c.Masters(t) {
		ranges, err := command(n.Addr, "CLUSTER", "SLOTS")
		if err != nil {
			continue
		}
		rs, _ := ranges.([]any)
		for _, rg := range rs {
			r, _ := rg.([]any)
			if len(r) < 3 {
				continue
			}
			lo, _ := r[0].(int64)
			hi, _ := r[1].(int64)
			owner, _ := r[2].([]any)
			if slot >= lo && slot <= hi && len(owner) >= 2 && fmt.Sprintf("%v:%v", owner[0], owner[1]) == n.Addr {
				return n
			}
		}
	}
	t.Fatalf("redistest: no master serves the slot of %s", key)
	return nil
}

// Masters returns the nodes that are masters now.
func (c *Cluster) Masters(t testing.TB) []*Server {
	t.Helper()
	var out []*Server
	for _, n := range c.nodes {
		if role, err := command(n.Addr, "ROLE"); err == nil {
			if r, _ := role.([]any); len(r) > 0 && r[0] == "master" {
				out = append(out, n)
			}
		}
	}
	return out
}

// ReplicaOf returns the replica of master m.
func (c *Cluster) ReplicaOf(t testing.TB, m *Server) *Server {
	t.Helper()
	for _, n := range c.nodes {
		role, err := command(n.Addr, "ROLE")
		r, _ := role.([]any)
		if err == nil && len(r) >= 3 && r[0] == "slave" && fmt.Sprintf("%v:%v", r[1], r[2]) == m.Addr {
			return n
		}
	}
	t.Fatalf("redistest: %s has no replica", m.Addr)
	return nil
}

// startClusterNode launches one cluster-enabled server on a free port whose
// cluster bus port (port+10000) is free as well.
func startClusterNode(dir string) (*Server, error) {
	var lastErr error
	for attempt := 0; attempt < 10; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		if port+10000 > 65535 || port == 6379 {
			continue
		}
		if !portFree(port + 10000) {
			continue
		}
		nodeDir := filepath.Join(dir, strconv.Itoa(port))
		if err := os.MkdirAll(nodeDir, 0o755); err != nil {
			return nil, err
		}
		s := &Server{Port: port, Addr: "127.0.0.1:" + strconv.Itoa(port), dir: nodeDir, args: []string{
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes-"+strconv.Itoa(port)+".conf"),
			"--cluster-node-timeout", "2000",
		}}
		if lastErr = s.launch(); lastErr == nil {
			return s, nil
		}
	}
	if lastErr == nil {
		lastErr = fmt.Errorf("no free port pair (port, port+10000) found")
	}
	return nil, lastErr
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// clusterInfo sends CLUSTER INFO over plain RESP (no client library: rueidis
// would try to route by slots the node does not serve yet).
func clusterInfo(addr string) (string, error) {
	v, err := command(addr, "CLUSTER", "INFO")
	if err != nil {
		return "", err
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("CLUSTER INFO: %v", v)
	}
	return s, nil
}
