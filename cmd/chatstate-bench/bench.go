package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// maxLatencySamples bounds the memory spent on latency samples (8 bytes each).
const maxLatencySamples = 20_000_000

func runBench(ctx context.Context, o options, logf func(string, ...any)) (*result, error) {
	res := &result{Opts: o.public()}
	sh := &shared{id: o.runID}
	clients := make([]*client, o.clients)
	for i := range clients {
		clients[i] = &client{idx: i, user: fmt.Sprintf("%s-u%d", o.runID, i), sh: sh}
	}
	defer func() {
		sh.closing.Store(true)
		closeAll(clients)
	}()

	if !o.idle {
		logf("creating %d conversations of %d", (o.clients+o.conv-1)/o.conv, o.conv)
		if err := createConversations(ctx, o, clients, 0); err != nil {
			return nil, err
		}
	}
	for r := range o.idleConvs {
		// Round r groups the users shifted by r: each user ends up in
		// idleConvs different conversations.
		logf("creating conversations of %d, round %d of %d", o.conv, r+1, o.idleConvs)
		if err := createConversations(ctx, o, clients, r); err != nil {
			return nil, err
		}
	}

	self0, _ := readProc(selfPID())
	goBase := scrapeAll(ctx, o.nodes)
	base, baseTotal, err := sampleAll(o.pids)
	if err != nil {
		return nil, fmt.Errorf("sample -pids: %w", err)
	}
	res.Baseline = baseTotal.RSS

	logf("connecting %d clients to %d node(s) from %d source address(es)", o.clients, len(o.nodes), o.srcIPs)
	t0 := time.Now()
	ok, failed, firstErr := connectAll(ctx, o, clients)
	res.Connect = connectStats{OK: ok, Failed: failed, Seconds: time.Since(t0).Seconds()}
	if firstErr != nil {
		res.Connect.FirstError = firstErr.Error()
	}
	logf("connected %d, failed %d in %.1fs", ok, failed, res.Connect.Seconds)
	if ok == 0 || (!o.idle && failed > 0) {
		return nil, fmt.Errorf("%d of %d connections failed, first: %v", failed, o.clients, firstErr)
	}

	settle := o.settle
	if !o.idle {
		settle = min(settle, 2*time.Second)
	}
	if !sleepCtx(ctx, settle) {
		return nil, ctx.Err()
	}
	after, afterTotal, err := sampleAll(o.pids)
	if err != nil {
		return nil, fmt.Errorf("sample -pids: %w", err)
	}
	if o.idle {
		res.Go = perConn(goBase, scrapeAll(ctx, o.nodes), ok)
	}
	res.IdleRSS = afterTotal.RSS
	if len(o.pids) > 0 {
		res.IdleRSSPerConn = float64(afterTotal.RSS-baseTotal.RSS) / float64(ok)
	}
	for i, pid := range o.pids {
		res.Nodes = append(res.Nodes, nodeStats{PID: pid, BaselineRSS: base[i].RSS, IdleRSS: after[i].RSS})
	}
	if o.idle {
		res.Disconnects = sh.disconnects.Load()
		self1, _ := readProc(selfPID())
		res.ClientCPU = (self1.CPU - self0.CPU).Seconds()
		return res, nil
	}

	if err := sendPhase(ctx, o, clients, sh, res, logf); err != nil {
		return nil, err
	}

	logf("draining (up to %s)", o.drain)
	deadline := time.Now().Add(o.drain)
	for {
		t := sh.track.count()
		if (t.Lost == 0 && t.Unacked == 0) || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	res.Disconnects = sh.disconnects.Load()
	sh.closing.Store(true)
	closeAll(clients)
	res.Tally = sh.track.count()
	parts := make([][]time.Duration, len(clients))
	for i, c := range clients {
		parts[i] = c.lat
	}
	res.Latency = summarize(mergeSorted(parts))
	for i, c := range clients {
		parts[i] = c.ackLat
	}
	res.AckLatency = summarize(mergeSorted(parts))
	self1, _ := readProc(selfPID())
	res.ClientCPU = (self1.CPU - self0.CPU).Seconds()
	return res, nil
}

// sendPhase sends at o.rate for warmup+duration; the measured window is the
// last o.duration of it.
func sendPhase(ctx context.Context, o options, clients []*client, sh *shared, res *result, logf func(string, ...any)) error {
	total := o.warmup + o.duration
	sh.track = newTracker(int(float64(o.rate)*total.Seconds()*1.05) + 1024)
	perClient := int(float64(o.rate)*o.duration.Seconds()*float64(o.conv)/float64(len(clients))*1.5) + 64
	for _, c := range clients {
		c.maxLt = min(perClient, maxLatencySamples/len(clients))
	}

	type job struct {
		c *client
		n int64
	}
	jobs := make(chan job, 4096)
	var sendErrs atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if err := j.c.send(j.n, sh.runID()); err != nil {
					sendErrs.Add(1)
					sh.track.ack(j.n, false)
				}
			}
		}()
	}

	var redis0 procSample
	if o.redisPID > 0 {
		redis0, _ = readProc(o.redisPID)
	}
	var cpu0 []procSample
	var cpu0Total procSample
	measuring := false
	start := time.Now()
	measureAt := start.Add(o.warmup)
	end := start.Add(total)
	logf("sending %d msg/s for %s (warmup %s)", o.rate, total, o.warmup)
	var sent, skipped int64
	next := 0
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var stopErr error
loop:
	for {
		select {
		case <-ctx.Done():
			stopErr = ctx.Err()
			break loop
		case now := <-tick.C:
			if !measuring && !now.Before(measureAt) {
				var err error
				if cpu0, cpu0Total, err = sampleAll(o.pids); err != nil {
					stopErr = err
					break loop
				}
				sh.win.end.Store(end.UnixNano())
				sh.win.start.Store(time.Now().UnixNano())
				measuring = true
				logf("measuring")
			}
			if !now.Before(end) {
				break loop
			}
			due := int64(float64(o.rate) * now.Sub(start).Seconds())
			for ; sent+skipped < due; next = (next + 1) % len(clients) {
				c := clients[next]
				if len(jobs) == cap(jobs) {
					skipped++ // client-side backlog: do not let the tool become the bottleneck silently
					continue
				}
				n := sh.track.reserve(c.want)
				if n < 0 {
					skipped++
					continue
				}
				jobs <- job{c, n}
				sent++
			}
		}
	}
	winEnd := time.Now()
	sh.win.end.Store(winEnd.UnixNano())
	cpu1, cpu1Total, err := sampleAll(o.pids)
	close(jobs)
	wg.Wait()
	if stopErr != nil {
		return stopErr
	}
	if err != nil {
		return err
	}
	if !measuring {
		return fmt.Errorf("send phase ended before the measurement window started")
	}
	winStart := time.Unix(0, sh.win.start.Load())
	secs := winEnd.Sub(winStart).Seconds()
	delivered := sh.inWindow.Load()
	res.Send = sendStats{Sent: sent, Skipped: skipped, SendErrors: sendErrs.Load(), Rate: float64(sent) / time.Since(start).Seconds()}
	res.Window = windowStats{Seconds: secs, Deliveries: delivered, DeliveriesPerSec: float64(delivered) / secs}
	cpu := (cpu1Total.CPU - cpu0Total.CPU).Seconds()
	res.CPU = cpuStats{Seconds: cpu, CoresBusy: cpu / secs}
	if delivered > 0 {
		res.CPU.MsPer1000 = cpu / float64(delivered) * 1e6
		res.CPU.USPerDelivery = cpu / float64(delivered) * 1e6
	}
	res.LoadRSS = cpu1Total.RSS
	for i := range res.Nodes {
		res.Nodes[i].LoadRSS = cpu1[i].RSS
		res.Nodes[i].CPUSeconds = (cpu1[i].CPU - cpu0[i].CPU).Seconds()
	}
	if o.redisPID > 0 {
		if r1, err := readProc(o.redisPID); err == nil && delivered > 0 {
			// Redis CPU over the whole send phase (warmup included), so per
			// delivery it is normalised by every delivery counted so far.
			all := sh.delivered.Load()
			res.Redis = &redisStats{PID: o.redisPID, CPUSeconds: (r1.CPU - redis0.CPU).Seconds(), RSS: r1.RSS}
			res.Redis.USPerDelivery = res.Redis.CPUSeconds / float64(max(all, 1)) * 1e6
		}
	}
	return nil
}

func (s *shared) runID() string { return s.id }

func selfPID() int { return os.Getpid() }

// createConversations puts clients, shifted by round, in conversations of
// o.conv (round 0: the send phase's conversations).
func createConversations(ctx context.Context, o options, clients []*client, round int) error {
	httpc := &http.Client{Timeout: 10 * time.Second}
	type group struct{ members []*client }
	var groups []group
	if round > 0 {
		shifted := append(append([]*client(nil), clients[round%len(clients):]...), clients[:round%len(clients)]...)
		clients = shifted
	}
	for i := 0; i < len(clients); i += o.conv {
		groups = append(groups, group{clients[i:min(i+o.conv, len(clients))]})
	}
	sem := make(chan struct{}, 8)
	errs := make(chan error, len(groups))
	var wg sync.WaitGroup
	for gi, g := range groups {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			id := fmt.Sprintf("%s-c%d", o.runID, gi)
			if round > 0 {
				id = fmt.Sprintf("%s-r%d-c%d", o.runID, round, gi)
			}
			users := make([]string, len(g.members))
			for i, c := range g.members {
				users[i] = c.user
				if round == 0 {
					c.conv = id
					c.want = len(g.members) - 1
				}
			}
			body, _ := json.Marshal(map[string]any{"id": id, "members": users})
			// Conversations are created on the first node; the others read them from Redis.
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, o.nodes[0]+"/v1/conversations", bytes.NewReader(body))
			if err != nil {
				errs <- err
				return
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+o.apiKey)
			resp, err := httpc.Do(req)
			if err != nil {
				errs <- err
				return
			}
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				errs <- fmt.Errorf("create conversation: HTTP %d %s", resp.StatusCode, msg)
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs // nil when the channel is empty
}

func connectAll(ctx context.Context, o options, clients []*client) (ok, failed int, firstErr error) {
	endpoints := make([]string, len(o.nodes))
	for i, n := range o.nodes {
		var err error
		if endpoints[i], err = wsURL(n); err != nil {
			return 0, len(clients), err
		}
	}
	dialers := make([]*websocket.Dialer, o.srcIPs)
	for i := range dialers {
		var src net.IP
		if o.srcIPs > 1 {
			src = net.IPv4(127, 0, 0, byte(i+1))
		}
		dialers[i] = newDialer(src)
	}
	var nOK, nFail atomic.Int64
	var errOnce sync.Once
	idx := make(chan int)
	var wg sync.WaitGroup
	for range min(o.dialWorkers, len(clients)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				c := clients[i]
				token := signHS256(o.secret, c.user, time.Now())
				cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
				err := c.connect(cctx, dialers[i%len(dialers)], endpoints[i%len(endpoints)], token)
				cancel()
				if err != nil {
					nFail.Add(1)
					errOnce.Do(func() { firstErr = fmt.Errorf("client %d: %w", i, err) })
					continue
				}
				nOK.Add(1)
			}
		}()
	}
	for i := range clients {
		if ctx.Err() != nil {
			break
		}
		idx <- i
	}
	close(idx)
	wg.Wait()
	return int(nOK.Load()), len(clients) - int(nOK.Load()), firstErr
}

func closeAll(clients []*client) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256)
	for _, c := range clients {
		if c.conn == nil || c.closed {
			continue
		}
		c.closed = true
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c.close()
		}()
	}
	wg.Wait()
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func summarize(lat []time.Duration) latencyStats {
	return latencyStats{Samples: len(lat), P50: ms(percentile(lat, 50)), P90: ms(percentile(lat, 90)),
		P99: ms(percentile(lat, 99)), Max: ms(percentile(lat, 100))}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
