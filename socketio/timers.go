package socketio

import (
	"sync"
	"time"
)

// timerQueue runs the timers of an engine's sessions (heartbeat, connect
// timeout, Conn.ExpireAt) from one goroutine and one runtime timer, instead
// of a runtime timer and a closure per session: a min-heap of deadlines,
// with the goroutine asleep until the earliest. Deadlines fire on time, as
// with time.AfterFunc (the protocol suites time ping timeouts to the
// millisecond), never early.
//
// An entry fires by calling its owner's onTimer (a session's) outside the
// queue's lock; onTimer returns the owner's next deadline, so moving a
// deadline later (a pong) costs nothing until the old one is reached. Only
// moving one earlier needs schedule. The goroutine runs only while some
// entry is queued.
type timerQueue struct {
	epoch time.Time
	wake  chan struct{} // the earliest deadline moved earlier

	mu      sync.Mutex
	heap    []*timerEntry // heap[0] is due first
	n       int           // entries queued or firing
	running bool
}

const (
	timerIdle uint8 = iota
	timerQueued
	timerFiring
	timerDead
)

// timerOwner is what a timerEntry fires: onTimer gets the queue's now and
// returns the owner's next deadline, 0 for none.
type timerOwner interface {
	onTimer(now int64) int64
}

// timerEntry is a session's place in the queue, under the queue's lock.
type timerEntry struct {
	owner timerOwner
	due   int64 // deadline, in the queue's time (now)
	req   int64 // earliest deadline asked for while firing; 0 none
	idx   int32 // index in heap while queued
	state uint8
}

func newTimerQueue() *timerQueue {
	return &timerQueue{epoch: time.Now(), wake: make(chan struct{}, 1)}
}

// now is the time deadlines are expressed in: nanoseconds since the queue
// was made, from the monotonic clock; never 0.
func (q *timerQueue) now() int64 { return int64(time.Since(q.epoch)) + 1 }

// schedule makes e fire at the latest at deadline at (see now). It never
// moves a queued entry later, and does nothing once e is removed.
func (q *timerQueue) schedule(e *timerEntry, at int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch e.state {
	case timerDead:
		return
	case timerFiring:
		if e.req == 0 || at < e.req {
			e.req = at
		}
		return
	case timerQueued:
		if at >= e.due {
			return
		}
		e.due = at
		q.up(int(e.idx))
	default:
		q.n++
		q.push(e, at)
		if !q.running {
			q.running = true
			go q.run()
			return
		}
	}
	if e.idx == 0 {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// remove takes e out for good.
func (q *timerQueue) remove(e *timerEntry) {
	q.mu.Lock()
	switch e.state {
	case timerQueued:
		first := e.idx == 0
		q.delete(int(e.idx))
		q.n--
		if first { // run sleeps for it: let it wait for the next, or end
			select {
			case q.wake <- struct{}{}:
			default:
			}
		}
	case timerFiring:
		q.n-- // run sees timerDead and does not queue it again
	}
	e.state = timerDead
	q.mu.Unlock()
}

func (q *timerQueue) run() {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	var due []*timerEntry
	for {
		q.mu.Lock()
		if q.n == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		now := q.now()
		for len(q.heap) > 0 && q.heap[0].due <= now {
			e := q.heap[0]
			q.delete(0)
			e.state = timerFiring
			due = append(due, e)
		}
		var wait time.Duration
		if len(due) == 0 {
			wait = time.Duration(q.heap[0].due - now) // n > 0 and nothing fires: the heap holds it
		}
		q.mu.Unlock()

		if len(due) == 0 {
			t.Reset(wait)
			select {
			case <-t.C:
			case <-q.wake:
				t.Stop()
			}
			continue
		}
		for i, e := range due {
			at := e.owner.onTimer(now)
			q.mu.Lock()
			if e.state == timerFiring {
				if e.req != 0 && (at == 0 || e.req < at) {
					at = e.req
				}
				e.req = 0
				if at != 0 {
					q.push(e, at)
				} else {
					e.state = timerIdle
					q.n--
				}
			}
			q.mu.Unlock()
			due[i] = nil
		}
		due = due[:0]
	}
}

// push, delete, up and down keep heap a binary min-heap on due, and idx
// each entry's index in it.

func (q *timerQueue) push(e *timerEntry, at int64) {
	e.due, e.state, e.idx = at, timerQueued, int32(len(q.heap))
	q.heap = append(q.heap, e)
	q.up(len(q.heap) - 1)
}

func (q *timerQueue) delete(i int) {
	last := len(q.heap) - 1
	if i != last {
		q.swap(i, last)
	}
	q.heap[last] = nil
	q.heap = q.heap[:last]
	if i != last {
		q.down(i)
		q.up(i)
	}
	if cap(q.heap) > 64 && len(q.heap) < cap(q.heap)/4 {
		q.heap = append([]*timerEntry(nil), q.heap...) // give back what a burst grew
	}
}

func (q *timerQueue) swap(i, j int) {
	q.heap[i], q.heap[j] = q.heap[j], q.heap[i]
	q.heap[i].idx, q.heap[j].idx = int32(i), int32(j)
}

func (q *timerQueue) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if q.heap[p].due <= q.heap[i].due {
			return
		}
		q.swap(i, p)
		i = p
	}
}

func (q *timerQueue) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(q.heap) {
			return
		}
		m := l
		if r := l + 1; r < len(q.heap) && q.heap[r].due < q.heap[l].due {
			m = r
		}
		if q.heap[i].due <= q.heap[m].due {
			return
		}
		q.swap(i, m)
		i = m
	}
}
