package gateway

import (
	"sync"
	"time"
)

// bucket is a per-socket token bucket for client events. It runs in
// process, with no Redis round trip: it only has to stop one socket from
// flooding the node and Redis with typing, sync or presence queries; the
// per-user message limit is the exact sliding window in Redis.
type bucket struct {
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// take spends one token, refilled at rate per second up to burst. It
// returns how long to wait when none is left.
func (b *bucket) take(now time.Time, rate float64, burst int) (ok bool, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last.IsZero() {
		b.tokens = float64(burst)
	} else {
		b.tokens = min(float64(burst), b.tokens+now.Sub(b.last).Seconds()*rate)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / rate * float64(time.Second))
}
