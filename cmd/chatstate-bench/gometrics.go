package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// goStats is what a node's GET /metrics (the Prometheus Go collector) says
// of its Go runtime: it lets the idle scenario split RSS per connection into
// goroutines, heap and stacks.
type goStats struct {
	Goroutines float64 `json:"goroutines"`
	HeapInuse  float64 `json:"heapInuseBytes"` // spans with objects, live or not yet swept
	HeapAlloc  float64 `json:"heapAllocBytes"` // allocated objects (live, and garbage since the last GC)
	StackInuse float64 `json:"stackInuseBytes"`
}

var goMetricNames = map[string]func(*goStats) *float64{
	"go_goroutines":                 func(s *goStats) *float64 { return &s.Goroutines },
	"go_memstats_heap_inuse_bytes":  func(s *goStats) *float64 { return &s.HeapInuse },
	"go_memstats_heap_alloc_bytes":  func(s *goStats) *float64 { return &s.HeapAlloc },
	"go_memstats_stack_inuse_bytes": func(s *goStats) *float64 { return &s.StackInuse },
}

// parseGoMetrics reads the Prometheus text format; every field must be
// there, else the endpoint is not a Go collector's.
func parseGoMetrics(r io.Reader) (goStats, error) {
	var s goStats
	found := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		field := goMetricNames[name]
		if !ok || field == nil {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return s, fmt.Errorf("metric %s: %w", name, err)
		}
		*field(&s) = v
		found++
	}
	if err := sc.Err(); err != nil {
		return s, err
	}
	if found < len(goMetricNames) {
		return s, fmt.Errorf("%d of %d Go runtime metrics found", found, len(goMetricNames))
	}
	return s, nil
}

// scrapeGo reads base/metrics; an error means the node has no Go metrics
// (e.g. the Node reference server), and the idle report goes without them.
func scrapeGo(ctx context.Context, base string) (goStats, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return goStats{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return goStats{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return goStats{}, fmt.Errorf("GET /metrics: HTTP %d", resp.StatusCode)
	}
	return parseGoMetrics(io.LimitReader(resp.Body, 8<<20))
}

// scrapeAll sums the Go metrics of every node, nil when one has none.
func scrapeAll(ctx context.Context, nodes []string) *goStats {
	var total goStats
	for _, n := range nodes {
		s, err := scrapeGo(ctx, n)
		if err != nil {
			return nil
		}
		total.Goroutines += s.Goroutines
		total.HeapInuse += s.HeapInuse
		total.HeapAlloc += s.HeapAlloc
		total.StackInuse += s.StackInuse
	}
	return &total
}

// perConnGo is the difference of two scrapes per connection.
type perConnGo struct {
	Before     goStats `json:"before"`
	After      goStats `json:"after"`
	Goroutines float64 `json:"goroutinesPerConn"`
	HeapInuse  float64 `json:"heapInusePerConnBytes"`
	HeapAlloc  float64 `json:"heapAllocPerConnBytes"`
	StackInuse float64 `json:"stackInusePerConnBytes"`
}

func perConn(before, after *goStats, conns int) *perConnGo {
	if before == nil || after == nil || conns <= 0 {
		return nil
	}
	n := float64(conns)
	return &perConnGo{Before: *before, After: *after,
		Goroutines: (after.Goroutines - before.Goroutines) / n,
		HeapInuse:  (after.HeapInuse - before.HeapInuse) / n,
		HeapAlloc:  (after.HeapAlloc - before.HeapAlloc) / n,
		StackInuse: (after.StackInuse - before.StackInuse) / n,
	}
}

// autoSrcIPs is how many loopback source addresses n connections to one
// address need: the kernel gives each source address the ephemeral port
// range (ip_local_port_range), less a margin for other sockets.
func autoSrcIPs(n int) int {
	ports := 28232 // the Linux default range, 32768-60999
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 {
			lo, err1 := strconv.Atoi(f[0])
			hi, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil && hi > lo {
				ports = hi - lo + 1
			}
		}
	}
	per := max(ports-2000, 1000)
	return min(max((n+per-1)/per, 1), 250)
}
