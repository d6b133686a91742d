package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Targets from the issue: benchmarks to report against, not assertions.
const (
	targetIdleKiBPerConn = 10
	targetUSPerDelivery  = 15
)

type publicOptions struct {
	Nodes    []string `json:"nodes"`
	Clients  int      `json:"clients"`
	Conv     int      `json:"conv"`
	Rate     int      `json:"rate"`
	Duration string   `json:"duration"`
	Warmup   string   `json:"warmup"`
	PIDs     []int    `json:"pids"`
	Idle     bool     `json:"idle"`
	IdleConv int      `json:"idleConvs,omitempty"`
	SrcIPs   int      `json:"srcIps"`
	RunID    string   `json:"runId"`
}

func (o options) public() publicOptions {
	return publicOptions{Nodes: o.nodes, Clients: o.clients, Conv: o.conv, Rate: o.rate, Duration: o.duration.String(),
		Warmup: o.warmup.String(), PIDs: o.pids, Idle: o.idle, IdleConv: o.idleConvs, SrcIPs: o.srcIPs, RunID: o.runID}
}

type connectStats struct {
	OK         int     `json:"ok"`
	Failed     int     `json:"failed"`
	Seconds    float64 `json:"seconds"`
	FirstError string  `json:"firstError,omitempty"`
}

type sendStats struct {
	Sent       int64   `json:"sent"`
	Skipped    int64   `json:"skipped"` // not sent because the tool's own send queue was full
	SendErrors int64   `json:"sendErrors"`
	Rate       float64 `json:"rate"` // achieved msg/s over warmup + duration
}

type windowStats struct {
	Seconds          float64 `json:"seconds"`
	Deliveries       int64   `json:"deliveries"`
	DeliveriesPerSec float64 `json:"deliveriesPerSec"`
}

type latencyStats struct {
	Samples int     `json:"samples"`
	P50     float64 `json:"p50Ms"`
	P90     float64 `json:"p90Ms"`
	P99     float64 `json:"p99Ms"`
	Max     float64 `json:"maxMs"`
}

type cpuStats struct {
	Seconds       float64 `json:"seconds"`   // server CPU (all -pids) in the window
	CoresBusy     float64 `json:"coresBusy"` // seconds of CPU per second of wall time
	MsPer1000     float64 `json:"msPer1000Deliveries"`
	USPerDelivery float64 `json:"usPerDelivery"`
}

type nodeStats struct {
	PID         int     `json:"pid"`
	BaselineRSS int64   `json:"baselineRss"`
	IdleRSS     int64   `json:"idleRss"`
	LoadRSS     int64   `json:"loadRss,omitempty"`
	CPUSeconds  float64 `json:"cpuSeconds,omitempty"`
}

type redisStats struct {
	PID           int     `json:"pid"`
	CPUSeconds    float64 `json:"cpuSeconds"` // warmup + window
	RSS           int64   `json:"rss"`
	USPerDelivery float64 `json:"usPerDelivery"`
}

type result struct {
	Opts           publicOptions `json:"options"`
	Connect        connectStats  `json:"connections"`
	Baseline       int64         `json:"baselineRss"` // bytes, all -pids, before connecting
	IdleRSS        int64         `json:"idleRss"`     // bytes, all -pids, connected and idle
	IdleRSSPerConn float64       `json:"idleRssPerConnBytes"`
	Go             *perConnGo    `json:"goRuntime,omitempty"` // idle: the nodes' Go metrics before and after connecting
	LoadRSS        int64         `json:"loadRss,omitempty"`   // bytes, all -pids, end of the window
	Send           sendStats     `json:"send"`
	Window         windowStats   `json:"window"`
	Tally          tally         `json:"deliveries"`
	Latency        latencyStats  `json:"latency"`    // send to message:new at a recipient
	AckLatency     latencyStats  `json:"ackLatency"` // send to the sender's ack
	CPU            cpuStats      `json:"serverCpu"`
	Nodes          []nodeStats   `json:"nodes"`
	Redis          *redisStats   `json:"redis,omitempty"`
	ClientCPU      float64       `json:"benchClientCpuSeconds"`
	Disconnects    int64         `json:"unexpectedDisconnects"`
}

func (r *result) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func (r *result) writeSummary(w io.Writer) {
	o := r.Opts
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	mode := "load"
	if o.Idle {
		mode = "idle"
	}
	p("chatstate-bench (%s)  run %s  nodes %s  source addresses %d", mode, o.RunID, strings.Join(o.Nodes, ","), o.SrcIPs)
	p("connections      %d ok, %d failed in %.1fs (%.0f/s)", r.Connect.OK, r.Connect.Failed, r.Connect.Seconds, float64(r.Connect.OK)/max(r.Connect.Seconds, 1e-9))
	if r.Connect.FirstError != "" {
		p("  first error    %s", r.Connect.FirstError)
	}
	if len(o.PIDs) > 0 {
		p("server RSS       baseline %.1f MiB, connected+idle %.1f MiB (pids %v)", mib(r.Baseline), mib(r.IdleRSS), o.PIDs)
		p("RSS per idle conn %.1f KiB  (target <= %d KiB: %s)", r.IdleRSSPerConn/1024, targetIdleKiBPerConn, verdict(r.IdleRSSPerConn/1024 <= targetIdleKiBPerConn))
	}
	if g := r.Go; g != nil {
		p("per idle conn    %.3f goroutines (%.0f -> %.0f), heap in use %.2f KiB, heap allocated %.2f KiB, stacks %.2f KiB  (GET /metrics)",
			g.Goroutines, g.Before.Goroutines, g.After.Goroutines, g.HeapInuse/1024, g.HeapAlloc/1024, g.StackInuse/1024)
	}
	if !o.Idle {
		t := r.Tally
		p("send             %d clients in conversations of %d, target %d msg/s, achieved %.0f msg/s (%d sent, %d skipped, %d send errors)",
			o.Clients, o.Conv, o.Rate, r.Send.Rate, r.Send.Sent, r.Send.Skipped, r.Send.SendErrors)
		p("acks             %d ok, %d error, %d missing", t.Acked, t.AckErrors, t.Unacked)
		p("deliveries/s     %.0f  (%d in the %.1fs window)", r.Window.DeliveriesPerSec, r.Window.Deliveries, r.Window.Seconds)
		p("latency          p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms  (%d samples)", r.Latency.P50, r.Latency.P90, r.Latency.P99, r.Latency.Max, r.Latency.Samples)
		p("ack latency      p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms  (send to ack)", r.AckLatency.P50, r.AckLatency.P90, r.AckLatency.P99, r.AckLatency.Max)
		p("lost             %d of %d expected (received %d, duplicates %d, deliveries of unacked messages %d)  (target 0: %s)",
			t.Lost, t.Expected, t.Received, t.Duplicates, t.Stray, verdict(t.Lost == 0 && t.Expected > 0))
		if len(o.PIDs) > 0 {
			p("server CPU       %.2f s in window = %.2f cores; %.2f ms per 1,000 deliveries = %.1f us/delivery  (target <= %d us: %s)",
				r.CPU.Seconds, r.CPU.CoresBusy, r.CPU.MsPer1000, r.CPU.USPerDelivery, targetUSPerDelivery, verdict(r.CPU.USPerDelivery <= targetUSPerDelivery))
			p("server RSS load  %.1f MiB at end of window = %.1f KiB per connection over baseline", mib(r.LoadRSS), float64(r.LoadRSS-r.Baseline)/float64(max(r.Connect.OK, 1))/1024)
		}
	}
	for _, n := range r.Nodes {
		line := fmt.Sprintf("  pid %-8d     RSS baseline %.1f MiB, idle %.1f MiB", n.PID, mib(n.BaselineRSS), mib(n.IdleRSS))
		if !o.Idle {
			line += fmt.Sprintf(", load %.1f MiB, CPU %.2f s", mib(n.LoadRSS), n.CPUSeconds)
		}
		p("%s", line)
	}
	if r.Redis != nil {
		p("redis pid %-7d CPU %.2f s over warmup+window = %.1f us/delivery, RSS %.1f MiB", r.Redis.PID, r.Redis.CPUSeconds, r.Redis.USPerDelivery, mib(r.Redis.RSS))
	}
	p("bench client     CPU %.2f s; unexpected disconnects %d", r.ClientCPU, r.Disconnects)
}

func verdict(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISSED"
}
