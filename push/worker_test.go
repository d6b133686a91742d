package push

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/pushtest"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/chatstate/chatstate/pushqueue"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const hookSecret = "webhook-secret-0123456789"

type tokenLog struct {
	mu      sync.Mutex
	removed []string
}

func (l *tokenLog) RemoveDeviceTokenIf(_ context.Context, user, device, token string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.removed = append(l.removed, user+"/"+device+"/"+token)
	return nil
}

type workerEnv struct {
	q       *pushqueue.Queue
	hook    *pushtest.Webhook
	tokens  *tokenLog
	metrics *Metrics
	reg     *prometheus.Registry
	ctx     context.Context
}

func newWorkerEnv(t *testing.T) *workerEnv {
	client, prefix := redistest.Start(t)
	reg := prometheus.NewRegistry()
	return &workerEnv{
		q:    pushqueue.New(client, pushqueue.Config{KeyPrefix: prefix, Lease: 5 * time.Second}),
		hook: pushtest.NewWebhook(t, hookSecret), tokens: &tokenLog{}, metrics: NewMetrics(reg), reg: reg, ctx: redistest.Ctx(t),
	}
}

// start runs a worker until the test ends.
func (e *workerEnv) start(t *testing.T, cfg WorkerConfig) {
	provider, err := New(e.ctx, Config{WebhookURL: e.hook.URL, WebhookSecret: hookSecret, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	w := NewWorker(e.q, provider, e.tokens, e.metrics, cfg)
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func (e *workerEnv) enqueue(t *testing.T, id string, prio chatstate.Priority) {
	t.Helper()
	p := chatstate.Push{ID: id, UserID: "bob", DeviceID: "phone", Platform: chatstate.PlatformAndroid, Token: "tok-" + id,
		Title: "alice", Body: "hi", Priority: prio, Data: map[string]string{"conversationId": "c1", "seq": "7"}}
	b, _ := json.Marshal(p)
	if n, err := e.q.Enqueue(e.ctx, pushqueue.Job{ID: pushqueue.JobID(id, "bob", "phone"), Priority: prio, Payload: b}); err != nil || n != 1 {
		t.Fatalf("enqueue %s: %d %v", id, n, err)
	}
}

func (e *workerEnv) outcome(provider, outcome string) float64 {
	return testutil.ToFloat64(e.metrics.outcomes.WithLabelValues(provider, outcome))
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A 503 is retried after a backoff; the retry succeeds.
func TestWorkerRetryThenSuccess(t *testing.T) {
	e := newWorkerEnv(t)
	e.hook.Reply(pushtest.Reply{Status: 503})
	e.start(t, WorkerConfig{BaseBackoff: 100 * time.Millisecond})
	e.enqueue(t, "n1", chatstate.PriorityHigh)
	reqs := e.hook.Wait(t, 2, 10*time.Second)
	for _, r := range reqs {
		if !r.SignatureOK || r.Push.ID != "n1" || r.Push.Data["seq"] != "7" {
			t.Fatalf("request %+v", r)
		}
	}
	if gap := reqs[1].At.Sub(reqs[0].At); gap < 50*time.Millisecond {
		t.Fatalf("retried after %v, before its backoff", gap)
	}
	waitFor(t, "sent counted", func() bool { return e.outcome("webhook", "sent") == 1 })
	if e.outcome("webhook", "retried") != 1 {
		t.Fatalf("retried %v", e.outcome("webhook", "retried"))
	}
	st, err := e.q.Recover(e.ctx, 10)
	if err != nil || st.High+st.Normal+st.Leased+st.Retry+st.Dead != 0 {
		t.Fatalf("queue after success: %+v %v", st, err)
	}
	if len(e.hook.Requests()) != 2 {
		t.Fatalf("%d requests, want 2", len(e.hook.Requests()))
	}
}

// After MaxAttempts failures the job is dead-lettered, with the reason.
func TestWorkerDeadLetterAfterMaxAttempts(t *testing.T) {
	e := newWorkerEnv(t)
	for range 5 {
		e.hook.Reply(pushtest.Reply{Status: 500})
	}
	e.start(t, WorkerConfig{MaxAttempts: 3, BaseBackoff: 20 * time.Millisecond})
	e.enqueue(t, "n1", chatstate.PriorityNormal)
	var dead []pushqueue.DeadJob
	waitFor(t, "the dead letter", func() bool {
		dead, _ = e.q.Dead(e.ctx, 10)
		return len(dead) == 1
	})
	if dead[0].Attempts != 3 || dead[0].ID != pushqueue.JobID("n1", "bob", "phone") || dead[0].Reason == "" {
		t.Fatalf("dead letter %+v", dead[0])
	}
	if n := len(e.hook.Requests()); n != 3 {
		t.Fatalf("%d sends, want exactly MaxAttempts = 3", n)
	}
	if e.outcome("webhook", "dead") != 1 || e.outcome("webhook", "retried") != 2 {
		t.Fatalf("dead %v retried %v", e.outcome("webhook", "dead"), e.outcome("webhook", "retried"))
	}
}

// A 4xx other than 410 and 429 is permanent: dead at once. A 410 prunes
// the token.
func TestWorkerPermanentAndGone(t *testing.T) {
	e := newWorkerEnv(t)
	e.hook.Reply(pushtest.Reply{Status: 400}, pushtest.Reply{Status: 410})
	e.start(t, WorkerConfig{Concurrency: 1})
	e.enqueue(t, "bad", chatstate.PriorityHigh)
	waitFor(t, "the 400", func() bool { return e.outcome("webhook", "dead") == 1 })
	e.enqueue(t, "gone", chatstate.PriorityHigh)
	waitFor(t, "the 410", func() bool { return e.outcome("webhook", "token_gone") == 1 })
	e.tokens.mu.Lock()
	defer e.tokens.mu.Unlock()
	if fmt.Sprint(e.tokens.removed) != "[bob/phone/tok-gone]" {
		t.Fatalf("removed tokens %v", e.tokens.removed)
	}
	if dead, _ := e.q.Dead(e.ctx, 10); len(dead) != 1 || dead[0].Attempts != 1 {
		t.Fatalf("dead %+v", dead)
	}
}

// Jobs waiting when a worker starts are sent high priority first.
func TestWorkerPriorityOrder(t *testing.T) {
	e := newWorkerEnv(t)
	for i := range 3 {
		e.enqueue(t, fmt.Sprint("normal", i), chatstate.PriorityNormal)
	}
	for i := range 2 {
		e.enqueue(t, fmt.Sprint("high", i), chatstate.PriorityHigh)
	}
	e.start(t, WorkerConfig{Concurrency: 1})
	reqs := e.hook.Wait(t, 5, 10*time.Second)
	var order []string
	for _, r := range reqs {
		order = append(order, r.Push.ID)
	}
	if got := fmt.Sprint(order); got != "[high0 high1 normal0 normal1 normal2]" {
		t.Fatalf("send order %s", got)
	}
}

// A malformed job is dead-lettered alone; the jobs claimed with it go out.
func TestWorkerMalformedJobAlone(t *testing.T) {
	e := newWorkerEnv(t)
	if _, err := e.q.Enqueue(e.ctx, pushqueue.Job{ID: "junk", Priority: chatstate.PriorityHigh, Payload: []byte("{not json")}); err != nil {
		t.Fatal(err)
	}
	e.enqueue(t, "ok", chatstate.PriorityHigh)
	e.start(t, WorkerConfig{})
	if r := e.hook.Wait(t, 1, 10*time.Second); r[0].Push.ID != "ok" {
		t.Fatalf("sent %+v", r[0])
	}
	waitFor(t, "the junk dead-lettered", func() bool {
		dead, _ := e.q.Dead(e.ctx, 10)
		return len(dead) == 1 && dead[0].ID == "junk"
	})
}
