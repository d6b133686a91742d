// Package redistest starts real redis-server processes for tests on free
// ports. It never touches the machine's shared Redis on 6379 and never
// flushes: tests isolate by a unique key prefix (Prefix).
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chatstate/chatstate/internal/redisconn"
	"github.com/redis/rueidis"
)

// Server is one redis-server child process.
type Server struct {
	Addr string
	Port int
	dir  string
	conf string // config file given first on the command line (sentinels); empty for none
	args []string
	proc *os.Process
	done chan struct{} // closed when proc has exited
}

var (
	sharedOnce sync.Once
	shared     *Server
	sharedErr  error
)

// Run wraps testing.M so the shared server (and cluster) is stopped when the package's
// tests end. Use it from TestMain: os.Exit(redistest.Run(m)).
func Run(m interface{ Run() int }) int {
	code := m.Run()
	if shared != nil {
		shared.Stop()
		os.RemoveAll(shared.dir)
	}
	if sharedCluster != nil {
		sharedCluster.stopAndRemove()
	}
	return code
}

// Shared returns the package-wide server, starting it on first use.
func Shared(t testing.TB) *Server {
	t.Helper()
	sharedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "redistest-")
		if err != nil {
			sharedErr = err
			return
		}
		shared, sharedErr = start(dir)
	})
	if sharedErr != nil {
		t.Fatalf("redistest: %v", sharedErr)
	}
	return shared
}

// Start returns a client of the shared server and a key prefix unique to t.
func Start(t testing.TB) (rueidis.Client, string) {
	t.Helper()
	s := Shared(t)
	return s.Client(t), Prefix(t)
}

// StartServer starts a dedicated server for tests that stop or restart
// Redis. It is stopped when t ends.
func StartServer(t testing.TB, extraArgs ...string) *Server {
	t.Helper()
	s, err := start(t.TempDir(), extraArgs...)
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// Client returns a rueidis client of s, closed when t ends.
func (s *Server) Client(t testing.TB) rueidis.Client {
	t.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{s.Addr}, DisableCache: true})
	if err != nil {
		t.Fatalf("redistest: client: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// Stop kills the server (SIGKILL: tests of crashes want no graceful exit).
func (s *Server) Stop() {
	if s.proc != nil {
		s.proc.Kill()
		<-s.done
		s.proc = nil
	}
}

// Freeze suspends the server (SIGSTOP): connections stay open but nothing
// is answered, as with a hung or partitioned Redis. Thaw resumes it.
func (s *Server) Freeze(t testing.TB) {
	t.Helper()
	if err := s.proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("redistest: freeze: %v", err)
	}
}

// Thaw resumes a frozen server (SIGCONT).
func (s *Server) Thaw(t testing.TB) {
	t.Helper()
	if err := s.proc.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("redistest: thaw: %v", err)
	}
}

// Restart starts the server again on the same port with an empty dataset.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	if err := s.launch(); err != nil {
		t.Fatalf("redistest: restart: %v", err)
	}
}

var safeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// Prefix returns a key prefix unique to t: "t:<name>:<random>:".
func Prefix(t testing.TB) string {
	var b [4]byte
	rand.Read(b[:])
	name := safeName.ReplaceAllString(t.Name(), "_")
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	return "t:" + name + ":" + hex.EncodeToString(b[:]) + ":"
}

func start(dir string, extraArgs ...string) (*Server, error) {
	return startWith(dir, "", extraArgs...)
}

// startWith starts a server with config file conf (empty for none) on a
// free port, retrying with another port if one was taken meanwhile.
func startWith(dir, conf string, extraArgs ...string) (*Server, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, fmt.Errorf("redis-server not found on PATH (bash .ci/run installs it): %w", err)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		if port == 6379 {
			continue
		}
		s := &Server{Port: port, Addr: "127.0.0.1:" + strconv.Itoa(port), dir: dir, conf: conf, args: extraArgs}
		if lastErr = s.launch(); lastErr == nil {
			return s, nil
		}
	}
	return nil, lastErr
}

func (s *Server) launch() error {
	var args []string
	if s.conf != "" {
		args = append(args, s.conf)
	}
	args = append(args,
		"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--loglevel", "warning", "--logfile", s.dir+"/redis.log",
	)
	args = append(args, s.args...)
	cmd := exec.Command("redis-server", args...)
	// Kill the server if the test binary dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			log, _ := os.ReadFile(s.dir + "/redis.log")
			return fmt.Errorf("redis-server on port %d exited: %v: %s", s.Port, waitErr, log)
		default:
		}
		if ping(s.Addr) {
			s.proc, s.done = cmd.Process, done
			return nil
		}
		time.Sleep(10 * time.Millisecond) // polling for readiness with a deadline
	}
	cmd.Process.Kill()
	<-done
	return fmt.Errorf("redis-server on port %d did not answer PING within 10s", s.Port)
}

func ping(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	buf := make([]byte, 7)
	n, _ := c.Read(buf)
	return string(buf[:n]) == "+PONG\r\n"
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Ctx returns a context cancelled when t ends.
func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}

// StartEmbedded returns a client of the embedded in-process Redis that the
// zero-setup mode runs (redisconn.StartEmbedded: miniredis with wall-clock
// TTLs), and a key prefix unique to t, so contract suites run on it too.
func StartEmbedded(t testing.TB) (rueidis.Client, string) {
	t.Helper()
	e, err := redisconn.StartEmbedded()
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(e.Close)
	return e.Client, Prefix(t)
}
