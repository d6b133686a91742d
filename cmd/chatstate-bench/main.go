// Command chatstate-bench is a load tool for the chatstate gateway. It opens
// N raw websocket clients (Engine.IO v4 / Socket.IO v5 spoken directly, so one
// machine can hold 10k of them), puts them in conversations of K members,
// sends message:send at R msg/s and reports connections, deliveries/s, p50/p99
// latency, lost deliveries, the servers' RSS per connection and their CPU per
// 1,000 deliveries (read from /proc/<pid> of the -pids given). The idle mode
// also reports goroutines, heap and stacks per connection from the nodes'
// GET /metrics (the Go collector), when they have it.
//
//	chatstate-bench -nodes http://127.0.0.1:8081,http://127.0.0.1:8082 \
//	  -clients 1000 -conv 10 -rate 2000 -duration 20s -warmup 5s \
//	  -secret s -api-key k -pids 1234,1235
//	chatstate-bench -idle -nodes http://127.0.0.1:8081 -clients 10000 -secret s -pids 1234
//
// It talks only to loopback addresses and stops by itself.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type options struct {
	nodes       []string
	clients     int
	conv        int
	rate        int
	duration    time.Duration
	warmup      time.Duration
	drain       time.Duration
	settle      time.Duration
	secret      string
	apiKey      string
	pids        []int
	redisPID    int
	idle        bool
	idleConvs   int
	jsonOut     bool
	srcIPs      int
	dialWorkers int
	runID       string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "chatstate-bench:", err)
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("chatstate-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nodes := fs.String("nodes", "http://127.0.0.1:8080", "comma-separated base URLs of gateway nodes (loopback only); clients are spread round-robin")
	pids := fs.String("pids", "", "comma-separated pids of the gateway processes to sample RSS and CPU from")
	fs.IntVar(&o.clients, "clients", 1000, "number of websocket clients (each its own user with one device)")
	fs.IntVar(&o.conv, "conv", 10, "members per conversation")
	fs.IntVar(&o.rate, "rate", 2000, "messages per second, all clients together")
	fs.DurationVar(&o.duration, "duration", 20*time.Second, "measured send phase")
	fs.DurationVar(&o.warmup, "warmup", 5*time.Second, "send phase before measuring")
	fs.DurationVar(&o.drain, "drain", 10*time.Second, "longest wait for outstanding deliveries after sending stops")
	fs.DurationVar(&o.settle, "settle", 3*time.Second, "wait after connecting before sampling idle RSS")
	fs.StringVar(&o.secret, "secret", "", "CHATSTATE_JWT_SECRET of the nodes (HS256)")
	fs.StringVar(&o.apiKey, "api-key", "", "CHATSTATE_API_KEY of the nodes (to create conversations)")
	fs.IntVar(&o.redisPID, "redis-pid", 0, "optional redis-server pid, reported separately")
	fs.BoolVar(&o.idle, "idle", false, "only connect the clients, report RSS per idle connection and exit")
	fs.IntVar(&o.idleConvs, "idle-convs", 0, "with -idle: put each user in this many conversations of -conv members first (needs -api-key)")
	fs.BoolVar(&o.jsonOut, "json", false, "print the result as JSON instead of the summary")
	fs.IntVar(&o.srcIPs, "src-ips", 0, "spread connections over source addresses 127.0.0.1..127.0.0.N (more ephemeral ports); 0 picks as many as -clients needs")
	fs.IntVar(&o.dialWorkers, "dial-concurrency", 64, "connections opened in parallel")
	fs.StringVar(&o.runID, "run-id", "", "prefix for user and conversation ids (default random)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, n := range strings.Split(*nodes, ",") {
		if n = strings.TrimRight(strings.TrimSpace(n), "/"); n != "" {
			if err := checkLoopback(n); err != nil {
				return o, err
			}
			o.nodes = append(o.nodes, n)
		}
	}
	for _, p := range strings.Split(*pids, ",") {
		if p = strings.TrimSpace(p); p != "" {
			v, err := strconv.Atoi(p)
			if err != nil || v <= 0 {
				return o, fmt.Errorf("-pids: %q is not a pid", p)
			}
			o.pids = append(o.pids, v)
		}
	}
	switch {
	case len(o.nodes) == 0:
		return o, fmt.Errorf("-nodes is required")
	case o.clients < 1 || o.clients > 60000:
		return o, fmt.Errorf("-clients must be 1..60000")
	case o.secret == "":
		return o, fmt.Errorf("-secret is required")
	case o.srcIPs < 0 || o.srcIPs > 250:
		return o, fmt.Errorf("-src-ips must be 0..250")
	case o.dialWorkers < 1 || o.dialWorkers > 1024:
		return o, fmt.Errorf("-dial-concurrency must be 1..1024")
	case o.settle < 0 || o.settle > 5*time.Minute:
		return o, fmt.Errorf("-settle must be 0..5m")
	case o.idleConvs < 0 || o.idleConvs > 1000:
		return o, fmt.Errorf("-idle-convs must be 0..1000")
	case o.idleConvs > 0 && (!o.idle || o.apiKey == "" || o.conv < 2 || o.conv > o.clients):
		return o, fmt.Errorf("-idle-convs needs -idle, -api-key and -conv 2..clients")
	}
	if !o.idle {
		switch {
		case o.conv < 2 || o.conv > o.clients:
			return o, fmt.Errorf("-conv must be 2..clients")
		case o.rate < 1 || o.rate > 200000:
			return o, fmt.Errorf("-rate must be 1..200000")
		case o.duration <= 0 || o.duration > 30*time.Minute:
			return o, fmt.Errorf("-duration must be in (0, 30m]")
		case o.warmup < 0 || o.warmup > 10*time.Minute:
			return o, fmt.Errorf("-warmup must be 0..10m")
		case o.drain < 0 || o.drain > 5*time.Minute:
			return o, fmt.Errorf("-drain must be 0..5m")
		case o.apiKey == "":
			return o, fmt.Errorf("-api-key is required to create conversations")
		}
	}
	if o.srcIPs == 0 {
		o.srcIPs = autoSrcIPs(o.clients)
	}
	if o.runID == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		o.runID = "bench" + hex.EncodeToString(b)
	}
	return o, nil
}

// checkLoopback refuses anything but a literal loopback address or
// localhost: this tool opens thousands of sockets and must not be aimed at a
// shared or production host by accident.
func checkLoopback(base string) error {
	u, err := url.Parse(base)
	if err != nil {
		return fmt.Errorf("-nodes: %w", err)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("-nodes: %q is not a loopback address (only 127.0.0.0/8, ::1 and localhost are allowed)", base)
}

// raiseNoFile lifts the open-files soft limit to what n sockets need.
func raiseNoFile(n int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	want := uint64(n) + 256
	if lim.Cur >= want {
		return nil
	}
	if lim.Max < want {
		lim.Max = want // works as root; otherwise Setrlimit reports it
	}
	lim.Cur = want
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raise open-files limit to %d: %w", want, err)
	}
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if err := raiseNoFile(o.clients); err != nil {
		return err
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(stderr, "[%s] "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, a...)...)
	}
	r, err := runBench(ctx, o, logf)
	if err != nil {
		return err
	}
	if o.jsonOut {
		return r.writeJSON(stdout)
	}
	r.writeSummary(stdout)
	return nil
}
