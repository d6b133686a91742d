package pushqueue

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/redis/rueidis"
)

func TestMain(m *testing.M) { os.Exit(redistest.Run(m)) }

type newClientFunc func(t testing.TB) (rueidis.Client, string)

// The queue contract runs on a real redis-server, a 3-master cluster and
// the embedded Redis of the development mode.
func TestQueueRedis(t *testing.T)    { testQueue(t, redistest.Start) }
func TestQueueCluster(t *testing.T)  { testQueue(t, redistest.StartClusterClient) }
func TestQueueEmbedded(t *testing.T) { testQueue(t, redistest.StartEmbedded) }

func testQueue(t *testing.T, nc newClientFunc) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, *Queue, context.Context)
	}{
		{"PriorityOrder", testPriorityOrder},
		{"Dedupe", testDedupe},
		{"LeaseExpiry", testLeaseExpiry},
		{"Retry", testRetry},
		{"DeadLetter", testDeadLetter},
		{"ConcurrentClaims", testConcurrentClaims},
		{"BadInput", testBadInput},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, prefix := nc(t)
			tc.fn(t, New(client, Config{KeyPrefix: prefix, Lease: 300 * time.Millisecond}), redistest.Ctx(t))
		})
	}
}

func job(id string, p chatstate.Priority) Job {
	return Job{ID: id, Priority: p, Payload: []byte(`{"id":"` + id + `"}`)}
}

func ids(jobs []Job) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func claimAll(t *testing.T, q *Queue, ctx context.Context) []Job {
	t.Helper()
	jobs, err := q.Claim(ctx, 100)
	must(t, err)
	return jobs
}

func testPriorityOrder(t *testing.T, q *Queue, ctx context.Context) {
	n, err := q.Enqueue(ctx, job("n1", chatstate.PriorityNormal), job("h1", chatstate.PriorityHigh), job("n2", chatstate.PriorityNormal))
	must(t, err)
	if n != 3 {
		t.Fatalf("added %d", n)
	}
	_, err = q.Enqueue(ctx, job("h2", chatstate.PriorityHigh))
	must(t, err)
	first, err := q.Claim(ctx, 3)
	must(t, err)
	if got := fmt.Sprint(ids(first)); got != "[h1 h2 n1]" {
		t.Fatalf("claim order %s: every high job before any normal one, FIFO within a priority", got)
	}
	if first[0].Attempt != 1 || string(first[0].Payload) != `{"id":"h1"}` || first[0].Priority != chatstate.PriorityHigh || first[0].EnqueuedAt == 0 {
		t.Fatalf("claimed job %+v", first[0])
	}
	if got := fmt.Sprint(ids(claimAll(t, q, ctx))); got != "[n2]" {
		t.Fatalf("then %s", got)
	}
}

func testDedupe(t *testing.T, q *Queue, ctx context.Context) {
	id := JobID("notif1", "alice", "phone")
	if n, _ := q.Enqueue(ctx, job(id, chatstate.PriorityHigh)); n != 1 {
		t.Fatal("first enqueue")
	}
	if n, _ := q.Enqueue(ctx, job(id, chatstate.PriorityHigh)); n != 0 {
		t.Fatal("a queued id is not added twice")
	}
	jobs := claimAll(t, q, ctx)
	if n, _ := q.Enqueue(ctx, job(id, chatstate.PriorityHigh)); n != 0 || len(jobs) != 1 {
		t.Fatal("a leased id is not added again")
	}
	must(t, q.Done(ctx, id))
	if n, _ := q.Enqueue(ctx, job(id, chatstate.PriorityHigh)); n != 0 {
		t.Fatal("a finished id is not added again within the dedupe window")
	}
	if jobs := claimAll(t, q, ctx); len(jobs) != 0 {
		t.Fatalf("claimed %v after done", ids(jobs))
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testLeaseExpiry(t *testing.T, q *Queue, ctx context.Context) {
	_, err := q.Enqueue(ctx, job("j", chatstate.PriorityNormal))
	must(t, err)
	if jobs := claimAll(t, q, ctx); len(jobs) != 1 {
		t.Fatal("claim")
	}
	// The worker dies: no Done. Within the lease nobody else gets it.
	if jobs := claimAll(t, q, ctx); len(jobs) != 0 {
		t.Fatalf("a leased job was claimed twice: %v", ids(jobs))
	}
	var again []Job
	eventually(t, 5*time.Second, "the job back after its lease", func() bool {
		again = claimAll(t, q, ctx)
		return len(again) == 1
	})
	if again[0].ID != "j" || again[0].Attempt != 2 {
		t.Fatalf("reclaimed %+v, want attempt 2", again[0])
	}
	// The sweep does the same for idle queues, and reports sizes.
	must(t, q.Retry(ctx, "j", 0))
	st, err := q.Recover(ctx, 100)
	must(t, err)
	if st.Forwarded != 1 || st.Normal != 1 || st.OldestAgeMs < 0 {
		t.Fatalf("recover: %+v", st)
	}
}

func testRetry(t *testing.T, q *Queue, ctx context.Context) {
	_, err := q.Enqueue(ctx, job("r", chatstate.PriorityHigh))
	must(t, err)
	claimAll(t, q, ctx)
	must(t, q.Retry(ctx, "r", 200*time.Millisecond))
	st, err := q.Recover(ctx, 100)
	must(t, err)
	if st.Retry != 1 || st.Leased != 0 || st.High != 0 {
		t.Fatalf("waiting for its retry: %+v", st)
	}
	var again []Job
	eventually(t, 5*time.Second, "the retry to come due", func() bool {
		again = claimAll(t, q, ctx)
		return len(again) == 1
	})
	if again[0].Attempt != 2 {
		t.Fatalf("retry attempt %d", again[0].Attempt)
	}
}

func testDeadLetter(t *testing.T, q *Queue, ctx context.Context) {
	_, err := q.Enqueue(ctx, job("d", chatstate.PriorityNormal))
	must(t, err)
	claimAll(t, q, ctx)
	must(t, q.Kill(ctx, "d", "provider said 400\nbad request"))
	dead, err := q.Dead(ctx, 10)
	must(t, err)
	if len(dead) != 1 || dead[0].ID != "d" || dead[0].Attempts != 1 || dead[0].Reason != "provider said 400 bad request" || string(dead[0].Payload) != `{"id":"d"}` {
		t.Fatalf("dead letters %+v", dead)
	}
	st, err := q.Recover(ctx, 100)
	must(t, err)
	if st.Dead != 1 || st.Normal+st.High+st.Leased+st.Retry != 0 {
		t.Fatalf("stats %+v", st)
	}
	// A late Retry or Done of a dead job changes nothing.
	must(t, q.Retry(ctx, "d", 0))
	if jobs := claimAll(t, q, ctx); len(jobs) != 0 {
		t.Fatalf("a dead job came back: %v", ids(jobs))
	}
}

// Several workers claiming at once never share a job.
func testConcurrentClaims(t *testing.T, q *Queue, ctx context.Context) {
	const n = 300
	var jobs []Job
	for i := range n {
		jobs = append(jobs, job(fmt.Sprint("c", i), []chatstate.Priority{chatstate.PriorityHigh, chatstate.PriorityNormal}[i%2]))
	}
	_, err := q.Enqueue(ctx, jobs...)
	must(t, err)
	var (
		mu   sync.Mutex
		seen = map[string]int{}
		wg   sync.WaitGroup
	)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				got, err := q.Claim(ctx, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, j := range got {
					seen[j.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("claimed %d distinct jobs, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("job %s claimed %d times", id, c)
		}
	}
}

func testBadInput(t *testing.T, q *Queue, ctx context.Context) {
	for _, j := range []Job{{ID: "", Priority: chatstate.PriorityHigh}, {ID: "a\nb", Priority: chatstate.PriorityHigh}, {ID: "x", Priority: "urgent"}} {
		if _, err := q.Enqueue(ctx, j); chatstate.ErrorCode(err) != chatstate.EINVALID {
			t.Fatalf("Enqueue(%+v) = %v, want invalid", j, err)
		}
	}
	if _, err := q.Enqueue(ctx, make([]Job, maxBatch+1)...); chatstate.ErrorCode(err) != chatstate.ETOOLARGE {
		t.Fatalf("oversized batch: %v", err)
	}
}
