// Package pushqueue is the reliable push queue on Redis (the Cache
// service's push queues of the design): jobs are claimed under a lease, a
// job whose worker died returns to the queue when its lease ends, failed
// jobs wait for a retry with backoff, jobs out of attempts go to a
// dead-letter list, and high priority is always served before normal. Job
// ids (notification id + device id) are deduplicated, so a device gets a
// notification once in the normal path.
//
// Every key shares the hash tag {pushq} (internal/keys), so each operation
// is one atomic Lua script on one Cluster slot, as asynq keeps a queue.
// The payload is opaque here; push/ encodes a chatstate.Push in it.
package pushqueue

import (
	"context"
	"embed"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/keys"
	"github.com/chatstate/chatstate/internal/luascript"
	"github.com/redis/rueidis"
)

// Config of the queue. Zero values mean the documented defaults.
type Config struct {
	KeyPrefix string
	// Lease is how long a claimed job stays with its worker before it
	// returns to the queue; zero means 30s. Longer than a provider call.
	Lease time.Duration
	// DedupeWindow is how long a finished job id is remembered, so the
	// same notification for the same device is not queued again; zero
	// means 24h.
	DedupeWindow time.Duration
	// DeadLimit caps the dead-letter list (oldest dropped); zero means 10000.
	DeadLimit int
}

func (c *Config) setDefaults() {
	if c.Lease <= 0 {
		c.Lease = 30 * time.Second
	}
	if c.DedupeWindow <= 0 {
		c.DedupeWindow = 24 * time.Hour
	}
	if c.DeadLimit <= 0 {
		c.DeadLimit = 10000
	}
}

// Job is one push job.
type Job struct {
	// ID is the idempotency key (JobID): one notification to one device.
	ID       string
	Priority chatstate.Priority
	Payload  []byte
	// Filled in by Claim:
	Attempt    int   // 1 on the first claim
	EnqueuedAt int64 // epoch ms
}

// JobID is the id of a notification's job for one device of a user.
func JobID(notificationID, userID, deviceID string) string {
	return notificationID + ":" + userID + ":" + deviceID
}

// Queue is the push queue.
type Queue struct {
	client rueidis.Client
	cfg    Config
	keys   keys.Keys

	mu   sync.Mutex
	wake chan struct{} // closed by Enqueue, so this node's workers claim at once
}

// New returns the queue. It does no I/O.
func New(client rueidis.Client, cfg Config) *Queue {
	cfg.setDefaults()
	return &Queue{client: client, cfg: cfg, keys: keys.New(cfg.KeyPrefix), wake: make(chan struct{})}
}

//go:embed *.lua
var luaFS embed.FS

func source(name string) string {
	b, err := luaFS.ReadFile(name + ".lua")
	if err != nil {
		panic("pushqueue: missing script " + name + ".lua")
	}
	return string(b)
}

func load(name string) *luascript.Script { return luascript.New(name, source(name)) }

// loadLib prepends queue_lib.lua (Redis 7.0's EVAL has no libraries).
func loadLib(name string) *luascript.Script {
	return luascript.New(name, source("queue_lib")+source(name))
}

var (
	scriptEnqueue = load("queue_enqueue")
	scriptClaim   = loadLib("queue_claim")
	scriptRecover = loadLib("queue_recover")
	scriptDone    = load("queue_done")
	scriptRetry   = load("queue_retry")
	scriptKill    = load("queue_kill")
)

// Scripts returns the Lua source of every script by name.
func Scripts() map[string]string {
	return luascript.Sources(scriptEnqueue, scriptClaim, scriptRecover, scriptDone, scriptRetry, scriptKill)
}

// maxBatch bounds one Enqueue or Claim.
const maxBatch = 1000

// Enqueue adds jobs; a job whose id is queued, leased, waiting or finished
// within the dedupe window is skipped. It returns how many were added.
func (q *Queue) Enqueue(ctx context.Context, jobs ...Job) (int, error) {
	if len(jobs) == 0 {
		return 0, nil
	}
	if len(jobs) > maxBatch {
		return 0, chatstate.Errorf(chatstate.ETOOLARGE, "%d jobs in one call, the limit is %d", len(jobs), maxBatch)
	}
	args := make([]string, 0, 1+3*len(jobs))
	args = append(args, ms(q.cfg.DedupeWindow))
	for _, j := range jobs {
		if j.ID == "" || strings.ContainsAny(j.ID, "\n") {
			return 0, chatstate.Errorf(chatstate.EINVALID, "job id %q", j.ID)
		}
		if j.Priority != chatstate.PriorityHigh && j.Priority != chatstate.PriorityNormal {
			return 0, chatstate.Errorf(chatstate.EINVALID, "job priority %q (want high or normal)", j.Priority)
		}
		args = append(args, j.ID, string(j.Priority), string(j.Payload))
	}
	n, err := scriptEnqueue.Exec(ctx, q.client,
		[]string{q.keys.PushJobs(), q.keys.PushPending("high"), q.keys.PushPending("normal"), q.keys.PushDone()}, args).AsInt64()
	if err != nil {
		return 0, luascript.Err(err)
	}
	if n > 0 {
		q.mu.Lock()
		close(q.wake)
		q.wake = make(chan struct{})
		q.mu.Unlock()
	}
	return int(n), nil
}

// Woken returns a channel closed at this node's next Enqueue that adds a job.
func (q *Queue) Woken() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.wake
}

// Claim leases up to n jobs, high priority first, after requeueing expired
// leases and due retries.
func (q *Queue) Claim(ctx context.Context, n int) ([]Job, error) {
	n = min(max(n, 1), maxBatch)
	reply, err := scriptClaim.Exec(ctx, q.client,
		[]string{q.keys.PushPending("high"), q.keys.PushPending("normal"), q.keys.PushLeased(), q.keys.PushJobs(), q.keys.PushAttempts(), q.keys.PushRetry()},
		[]string{ms(q.cfg.Lease), strconv.Itoa(n)}).ToArray()
	if err != nil {
		return nil, luascript.Err(err)
	}
	jobs := make([]Job, 0, len(reply)/3)
	for i := 0; i+2 < len(reply); i += 3 {
		id, err1 := reply[i].ToString()
		attempt, err2 := reply[i+1].AsInt64()
		rec, err3 := reply[i+2].ToString()
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("pushqueue: claim: unexpected reply")
		}
		j, err := parseRecord(id, rec)
		if err != nil {
			return nil, err
		}
		j.Attempt = int(attempt)
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// parseRecord reads "<priority>\n<enqueued ms>\n<payload>".
func parseRecord(id, rec string) (Job, error) {
	parts := strings.SplitN(rec, "\n", 3)
	if len(parts) != 3 {
		return Job{}, fmt.Errorf("pushqueue: job %s: malformed record", id)
	}
	at, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return Job{}, fmt.Errorf("pushqueue: job %s: malformed record", id)
	}
	return Job{ID: id, Priority: chatstate.Priority(parts[0]), EnqueuedAt: at, Payload: []byte(parts[2])}, nil
}

// Done finishes a leased job.
func (q *Queue) Done(ctx context.Context, id string) error {
	err := scriptDone.Exec(ctx, q.client, []string{q.keys.PushLeased(), q.keys.PushJobs(), q.keys.PushAttempts(), q.keys.PushDone()}, []string{id}).Error()
	return luascript.Err(err)
}

// Retry releases a leased job to be claimed again after delay.
func (q *Queue) Retry(ctx context.Context, id string, delay time.Duration) error {
	err := scriptRetry.Exec(ctx, q.client, []string{q.keys.PushLeased(), q.keys.PushRetry(), q.keys.PushJobs()}, []string{id, ms(delay)}).Error()
	return luascript.Err(err)
}

// Kill moves a leased job to the dead-letter list with reason.
func (q *Queue) Kill(ctx context.Context, id, reason string) error {
	reason = strings.ReplaceAll(truncate(reason, 512), "\n", " ")
	err := scriptKill.Exec(ctx, q.client, []string{q.keys.PushLeased(), q.keys.PushJobs(), q.keys.PushAttempts(), q.keys.PushDead()},
		[]string{id, reason, strconv.Itoa(q.cfg.DeadLimit)}).Error()
	return luascript.Err(err)
}

// Stats are the queue's sizes after a Recover.
type Stats struct {
	Requeued  int `json:"requeued"`  // expired leases returned to the queue by this call
	Forwarded int `json:"forwarded"` // due retries returned to the queue by this call
	High      int `json:"high"`      // waiting, high priority
	Normal    int `json:"normal"`    // waiting, normal priority
	Leased    int `json:"leased"`
	Retry     int `json:"retry"` // waiting for a retry
	Dead      int `json:"dead"`
	// OldestAgeMs is the age of the oldest waiting job, 0 when none.
	OldestAgeMs int64 `json:"oldestAgeMs"`
}

// Recover is the sweep behind the workers (the design's notification
// processing): it requeues jobs whose lease expired and retries that are
// due, up to limit of each, and reports the queue's sizes.
func (q *Queue) Recover(ctx context.Context, limit int) (Stats, error) {
	return q.recover(ctx, min(max(limit, 1), maxBatch))
}

// Stats reports the queue's sizes and moves nothing (Recover with a limit
// of 0), for statistics reads.
func (q *Queue) Stats(ctx context.Context) (Stats, error) { return q.recover(ctx, 0) }

func (q *Queue) recover(ctx context.Context, limit int) (Stats, error) {
	reply, err := scriptRecover.Exec(ctx, q.client,
		[]string{q.keys.PushLeased(), q.keys.PushRetry(), q.keys.PushJobs(), q.keys.PushPending("high"), q.keys.PushPending("normal"), q.keys.PushDead()},
		[]string{strconv.Itoa(limit)}).AsIntSlice()
	if err != nil {
		return Stats{}, luascript.Err(err)
	}
	if len(reply) != 8 {
		return Stats{}, fmt.Errorf("pushqueue: recover: unexpected reply")
	}
	st := Stats{Requeued: int(reply[0]), Forwarded: int(reply[1]), High: int(reply[2]), Normal: int(reply[3]),
		Leased: int(reply[4]), Retry: int(reply[5]), Dead: int(reply[6])}
	if reply[7] > 0 {
		st.OldestAgeMs = max(time.Now().UnixMilli()-reply[7], 0)
	}
	return st, nil
}

// DeadJob is one dead-letter entry.
type DeadJob struct {
	Job
	DiedAt   int64  `json:"diedAt"` // epoch s
	Attempts int    `json:"attempts"`
	Reason   string `json:"reason"`
}

// Dead returns up to limit dead-letter entries, newest first.
func (q *Queue) Dead(ctx context.Context, limit int) ([]DeadJob, error) {
	limit = min(max(limit, 1), maxBatch)
	raws, err := q.client.Do(ctx, q.client.B().Lrange().Key(q.keys.PushDead()).Start(0).Stop(int64(limit-1)).Build()).AsStrSlice()
	if err != nil {
		return nil, luascript.Err(err)
	}
	out := make([]DeadJob, 0, len(raws))
	for _, raw := range raws {
		p := strings.SplitN(raw, "\n", 5)
		if len(p) != 5 {
			continue
		}
		j, err := parseRecord(p[0], p[4])
		if err != nil {
			continue
		}
		died, _ := strconv.ParseInt(p[1], 10, 64)
		attempts, _ := strconv.Atoi(p[2])
		out = append(out, DeadJob{Job: j, DiedAt: died, Attempts: attempts, Reason: p[3]})
	}
	return out, nil
}

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
