package cleanup

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/cache"
	"github.com/chatstate/chatstate/internal/keys"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/chatstate/chatstate/presence"
	"github.com/chatstate/chatstate/pushqueue"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"
)

func TestMain(m *testing.M) { os.Exit(redistest.Run(m)) }

// probe is a job that records who runs it and whether two rounds overlap.
type probe struct {
	mu       sync.Mutex
	active   int
	overlaps int
	runs     []string // owner of each finished round, in order
	longDone bool
	renewed  bool
}

// Two Cleaners ("nodes") tick the same job every 50 ms. The first round
// holds for three leases: the other node must not enter meanwhile (the
// lease is renewed, the lock still holds the first node's token after the
// lease), and once it is released the other node takes later rounds. No
// two rounds ever overlap.
func TestTwoNodesNeverRunAJobAtOnce(t *testing.T) {
	client, prefix := redistest.Start(t)
	ctx, cancel := context.WithCancel(redistest.Ctx(t))
	defer cancel()
	const lease = 600 * time.Millisecond
	lockKey := keys.New(prefix).Lock("probe")
	p := &probe{}
	round := func(owner string) func(context.Context) (JobResult, error) {
		return func(ctx context.Context) (JobResult, error) {
			p.mu.Lock()
			p.active++
			if p.active > 1 {
				p.overlaps++
			}
			long := !p.longDone
			p.longDone = true
			p.mu.Unlock()
			if long {
				for start := time.Now(); time.Since(start) < 3*lease; {
					select {
					case <-ctx.Done():
						return JobResult{}, ctx.Err()
					case <-time.After(20 * time.Millisecond): // holding the round, not synchronising
					}
				}
				v, err := client.Do(ctx, client.B().Get().Key(lockKey).Build()).ToString()
				p.mu.Lock()
				p.renewed = err == nil && strings.HasPrefix(v, owner+"/")
				p.mu.Unlock()
			}
			p.mu.Lock()
			p.active--
			p.runs = append(p.runs, owner)
			p.mu.Unlock()
			return JobResult{Removed: 1}, nil
		}
	}
	regs := map[string]*prometheus.Registry{}
	var wg sync.WaitGroup
	for _, owner := range []string{"a", "b"} {
		regs[owner] = prometheus.NewRegistry()
		c := New(Config{KeyPrefix: prefix, Owner: owner, Lease: lease}, Deps{Redis: client, Registerer: regs[owner]})
		c.add("probe", 50*time.Millisecond, round(owner))
		wg.Go(func() { c.Run(ctx) })
	}

	deadline := time.Now().Add(30 * time.Second)
	for {
		p.mu.Lock()
		var first string
		other := false
		if len(p.runs) > 0 {
			first = p.runs[0]
			for _, o := range p.runs[1:] {
				other = other || o != first
			}
		}
		n := len(p.runs)
		p.mu.Unlock()
		if other && n >= 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: rounds %v; want the other node to take rounds after the long one", p.runs)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	cancel()
	wg.Wait()
	if p.overlaps != 0 {
		t.Fatalf("%d rounds overlapped: %v", p.overlaps, p.runs)
	}
	if !p.renewed {
		t.Fatal("after three leases the lock no longer held the long round's token: it was not renewed")
	}
	var ok, skipped float64
	for _, reg := range regs {
		ok += gathered(t, reg, "chatstate_cleanup_runs_total", "probe", "ok")
		skipped += gathered(t, reg, "chatstate_cleanup_runs_total", "probe", "skipped")
		if r := gathered(t, reg, "chatstate_cleanup_removed_total", "probe", ""); r != gathered(t, reg, "chatstate_cleanup_runs_total", "probe", "ok") {
			t.Errorf("removed %v, want one per ok round", r)
		}
	}
	if int(ok) != len(p.runs) || skipped == 0 {
		t.Fatalf("metrics: %v ok rounds (ran %d), %v skipped ticks (want some: the long round blocked the other node)", ok, len(p.runs), skipped)
	}
	if v, err := client.Do(context.Background(), client.B().Get().Key(lockKey).Build()).ToString(); err == nil && v != "~done" {
		t.Fatalf("after shutdown the lock still holds %q", v)
	}
}

// gathered is the value of a counter with labels job (and result, when
// not empty).
func gathered(t *testing.T, reg *prometheus.Registry, name, job, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["job"] == job && (result == "" || labels["result"] == result) {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// fixture is Redis state with something for every sweep to remove.
type fixture struct {
	client  rueidis.Client
	prefix  string
	cache   *cache.Cache
	alive   *presence.State
	queue   *pushqueue.Queue
	depth   map[string]int
	depthMu sync.Mutex
	changes []chatstate.Presence
}

func newFixture(t *testing.T) *fixture {
	client, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	f := &fixture{client: client, prefix: prefix, depth: map[string]int{}}
	f.cache = cache.New(client, cache.Config{KeyPrefix: prefix, SessionTTL: 200 * time.Millisecond})
	crashed := presence.New(client, presence.Config{KeyPrefix: prefix, NodeID: "crashed", NodeTimeout: 300 * time.Millisecond})
	f.alive = presence.New(client, presence.Config{KeyPrefix: prefix, NodeID: "alive", NodeTimeout: 300 * time.Millisecond,
		TypingTTL: time.Minute, Connections: func() int { return 5 }})
	quick := presence.New(client, presence.Config{KeyPrefix: prefix, NodeID: "alive", TypingTTL: 100 * time.Millisecond})
	f.queue = pushqueue.New(client, pushqueue.Config{KeyPrefix: prefix, Lease: time.Second})
	for _, s := range []*presence.State{crashed, f.alive} {
		must(t, s.Heartbeat(ctx))
	}
	_, err := crashed.SetUserOnline(ctx, "ghost", "d", "s1")
	must(t, err)
	_, err = f.alive.SetUserOnline(ctx, "here", "d", "s2")
	must(t, err)
	// old1 has an idle session and an active one: the sweep removes the
	// idle one. (A user whose sessions all expire loses the whole key.)
	for _, d := range []string{"idle", "active"} {
		_, err := f.cache.CreateSession(ctx, chatstate.Session{UserID: "old1", DeviceID: d})
		must(t, err)
	}
	// c1 keeps a live typer, so the quick one's entry lingers expired.
	must(t, quick.SetUserTyping(ctx, "quick", "c1"))
	must(t, f.alive.SetUserTyping(ctx, "slow", "c1"))
	// One push job claimed by a worker that then died, one waiting.
	_, err = f.queue.Enqueue(ctx, pushqueue.Job{ID: "n1:u:d", Priority: chatstate.PriorityHigh, Payload: []byte("{}")})
	must(t, err)
	jobs, err := f.queue.Claim(ctx, 1)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("claim: %v %v", jobs, err)
	}
	_, err = f.queue.Enqueue(ctx, pushqueue.Job{ID: "n2:u:d", Priority: chatstate.PriorityNormal, Payload: []byte("{}")})
	must(t, err)
	return f
}

func (f *fixture) cleaner(cfg Config, reg prometheus.Registerer) *Cleaner {
	cfg.KeyPrefix = f.prefix
	return New(cfg, Deps{Redis: f.client, Sessions: f.cache, Presence: f.alive, Queue: f.queue, Cache: f.cache, Registerer: reg,
		SetDepth: func(state string, n int) { f.depthMu.Lock(); f.depth[state] = n; f.depthMu.Unlock() },
		OnPresenceChange: func(_ context.Context, p chatstate.Presence) error {
			f.changes = append(f.changes, p)
			return nil
		}})
}

// keepAlive refreshes what must survive the sweeps: the live node and the
// active session.
func (f *fixture) keepAlive(t *testing.T, ctx context.Context) {
	must(t, f.alive.Heartbeat(ctx))
	_, err := f.cache.UpdateSessionActivity(ctx, "old1", "active")
	must(t, err)
}

// RunOnce (the manual cleanup) runs every job and reports what each
// removed: the idle session, the crashed node's user (announced once), the
// expired typing entry, the dead worker's push job (requeued; the queue
// depth recorded). The counters move.
func TestRunOnceSweepsEverything(t *testing.T) {
	f := newFixture(t)
	ctx := redistest.Ctx(t)
	reg := prometheus.NewRegistry()
	cl := f.cleaner(Config{}, reg)
	total := map[string]int{}
	var last Result
	deadline := time.Now().Add(15 * time.Second)
	for total["sessions"] == 0 || total["presence"] == 0 || total["typing"] == 0 || total["notifications"] == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("cleanup did not find the stale state: %+v", total)
		}
		f.keepAlive(t, ctx)
		r, err := cl.RunOnce(ctx)
		must(t, err)
		for job, res := range r {
			total[job] += res.Removed
		}
		last = r
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	if len(last) != 4 {
		t.Fatalf("result %v, want one entry per job", last)
	}
	if total["sessions"] != 1 || total["presence"] != 1 || total["typing"] != 1 || total["notifications"] != 1 {
		t.Fatalf("removed %v, want 1 of each", total)
	}
	if len(f.changes) != 1 || f.changes[0].UserID != "ghost" || f.changes[0].Online {
		t.Fatalf("announced %+v, want ghost offline once", f.changes)
	}
	if s, err := f.cache.Sessions(ctx, "old1"); err != nil || len(s) != 1 || s[0].DeviceID != "active" {
		t.Fatalf("sessions after the sweep: %v %v", s, err)
	}
	if n, err := f.client.Do(ctx, f.client.B().Zcard().Key(keys.New(f.prefix).Typing("c1")).Build()).AsInt64(); err != nil || n != 1 {
		t.Fatalf("typing entries of c1 after the sweep: %d %v", n, err)
	}
	st, err := f.queue.Stats(ctx)
	must(t, err)
	if st.High != 1 || st.Normal != 1 || st.Leased != 0 {
		t.Fatalf("queue after the sweep %+v, want the dead worker's job back in high", st)
	}
	f.depthMu.Lock()
	if f.depth["high"] != 1 || f.depth["normal"] != 1 || f.depth["leased"] != 0 {
		t.Errorf("depth gauge %v", f.depth)
	}
	f.depthMu.Unlock()
	for job, want := range total {
		if got := gathered(t, reg, "chatstate_cleanup_removed_total", job, ""); int(got) != want {
			t.Errorf("chatstate_cleanup_removed_total{job=%q} = %v, want %d", job, got, want)
		}
		if gathered(t, reg, "chatstate_cleanup_runs_total", job, "ok") == 0 {
			t.Errorf("chatstate_cleanup_runs_total{job=%q,result=ok} did not move", job)
		}
	}
}

// Run starts every job on its ticker; each round runs and is counted.
func TestRunTicksEveryJob(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(redistest.Ctx(t))
	reg := prometheus.NewRegistry()
	const every = 50 * time.Millisecond
	cl := f.cleaner(Config{SessionInterval: every, NotificationInterval: every, PresenceInterval: every, TypingInterval: every, StatsInterval: every}, reg)
	done := make(chan error, 1)
	go func() { done <- cl.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for _, job := range []string{"sessions", "notifications", "presence", "typing", "stats"} {
		for gathered(t, reg, "chatstate_cleanup_runs_total", job, "ok") == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("job %s never ran", job)
			}
			time.Sleep(20 * time.Millisecond) // polling with a deadline
		}
	}
	for gathered(t, reg, "chatstate_cleanup_removed_total", "typing", "") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the typing sweep never removed the expired entry")
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// Stats reports what the fixture created: keys per kind, nodes with their
// connections, online users, typing entries, the queue, Redis memory.
func TestStats(t *testing.T) {
	f := newFixture(t)
	ctx := redistest.Ctx(t)
	cl := f.cleaner(Config{}, nil)
	must(t, f.alive.Heartbeat(ctx))
	r, err := cl.Stats(ctx)
	must(t, err)
	if r.Redis == nil || r.Redis.UsedMemory <= 0 || r.Redis.UsedMemoryPeak <= 0 || r.Redis.MaxMemoryPolicy == "" || r.Redis.Fragmentation <= 0 {
		t.Errorf("redis %+v", r.Redis)
	}
	if r.Keys == nil || !r.Keys.Complete || r.Keys.Kinds["sessions"] != 1 || r.Keys.Kinds["presence"] != 2 ||
		r.Keys.Kinds["typing"] != 1 || r.Keys.Kinds["pushq"] < 3 || r.Keys.Kinds["nodes"] != 1 || r.Keys.Kinds["nodeinfo"] != 1 {
		t.Errorf("keys %+v", r.Keys)
	}
	if r.Typing == nil || r.Typing.Live+r.Typing.Expired != 2 || r.Typing.Conversations != 1 {
		t.Errorf("typing %+v", r.Typing)
	}
	if r.OnlineUsers != 2 {
		t.Errorf("online users %d, want 2 (the ghost until the sweep)", r.OnlineUsers)
	}
	var alive *presence.Node
	for i, n := range r.Nodes {
		if n.Instance == f.alive.Instance() {
			alive = &r.Nodes[i]
		}
	}
	if alive == nil || alive.Connections != 5 || r.Connections < 5 {
		t.Errorf("nodes %+v, connections %d; want the live node with 5", r.Nodes, r.Connections)
	}
	if q := r.PushQueue; q == nil || q.High != 0 || q.Normal != 1 || q.Leased != 1 || q.OldestAgeMs < 0 {
		t.Errorf("push queue %+v", r.PushQueue)
	}
	// Stats changes nothing: the leased job is still leased.
	if st, err := f.queue.Stats(ctx); err != nil || st.Leased != 1 {
		t.Errorf("queue after Stats %+v %v", st, err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A failing round is counted as an error and the job runs again on its
// next tick.
func TestFailingRoundRetriesNextTick(t *testing.T) {
	client, prefix := redistest.Start(t)
	ctx, cancel := context.WithCancel(redistest.Ctx(t))
	defer cancel()
	reg := prometheus.NewRegistry()
	c := New(Config{KeyPrefix: prefix}, Deps{Redis: client, Registerer: reg})
	var mu sync.Mutex
	calls := 0
	c.add("flaky", 20*time.Millisecond, func(context.Context) (JobResult, error) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls == 1 {
			return JobResult{}, errors.New("redis hiccup")
		}
		return JobResult{Removed: 2}, nil
	})
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for gathered(t, reg, "chatstate_cleanup_runs_total", "flaky", "ok") == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the job did not run again after its failure")
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	cancel()
	<-done
	if e := gathered(t, reg, "chatstate_cleanup_runs_total", "flaky", "error"); e != 1 {
		t.Fatalf("error rounds %v, want 1", e)
	}
	if r := gathered(t, reg, "chatstate_cleanup_removed_total", "flaky", ""); r < 2 {
		t.Fatalf("removed %v, want the successful rounds' 2 each", r)
	}
}
