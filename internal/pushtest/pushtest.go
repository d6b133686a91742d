// Package pushtest has local fakes of the push providers' servers for tests:
// a webhook receiver (Webhook), FCM HTTP v1 with its OAuth token endpoint
// (FCM) and APNs over HTTP/2 with TLS (APNs). Each speaks its provider's
// wire protocol closely enough for the real SDK to classify its answers,
// records what it received and answers from a per-test script.
package pushtest

import (
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Reply is one scripted answer of a fake. The zero Reply is the fake's
// success answer.
type Reply struct {
	// Status is the HTTP status; zero means 200.
	Status int
	// Body is sent as is; empty means the fake's success body for a 2xx.
	Body string
	// RetryAfter, when set, is sent as the Retry-After header (seconds).
	RetryAfter int
	// Delay holds the request this long before answering, or until the
	// client gives up, whichever is first: the way to script a timeout.
	Delay time.Duration
}

// write sends r (after its delay) with the given content type; ok is the
// success body used when r has none.
func (r Reply) write(w http.ResponseWriter, req *http.Request, contentType, ok string) {
	if r.Delay > 0 {
		t := time.NewTimer(r.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-req.Context().Done():
			return
		}
	}
	status := r.Status
	if status == 0 {
		status = http.StatusOK
	}
	body := r.Body
	if body == "" && status/100 == 2 {
		body = ok
	}
	if r.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(r.RetryAfter))
	}
	if body != "" {
		w.Header().Set("Content-Type", contentType)
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// script is a queue of replies; an empty queue answers the zero Reply.
type script struct {
	mu      sync.Mutex
	replies []Reply
}

func (s *script) push(r ...Reply) {
	s.mu.Lock()
	s.replies = append(s.replies, r...)
	s.mu.Unlock()
}

func (s *script) next() Reply {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.replies) == 0 {
		return Reply{}
	}
	r := s.replies[0]
	s.replies = s.replies[1:]
	return r
}

// journal records what a fake received and lets a test wait for it.
type journal[T any] struct {
	mu      sync.Mutex
	items   []T
	changed chan struct{} // closed and replaced on every add
}

func (j *journal[T]) add(v T) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.items = append(j.items, v)
	if j.changed != nil {
		close(j.changed)
		j.changed = nil
	}
}

func (j *journal[T]) all() []T {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]T(nil), j.items...)
}

// wait returns the first n items once there are n, failing t if they do
// not arrive within timeout.
func (j *journal[T]) wait(t testing.TB, n int, timeout time.Duration) []T {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		j.mu.Lock()
		if len(j.items) >= n {
			out := append([]T(nil), j.items[:n]...)
			j.mu.Unlock()
			return out
		}
		if j.changed == nil {
			j.changed = make(chan struct{})
		}
		ch, got := j.changed, len(j.items)
		j.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("pushtest: %d of %d requests arrived within %s", got, n, timeout)
			return nil
		}
	}
}
