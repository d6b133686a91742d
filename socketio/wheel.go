package socketio

import (
	"sync"
	"time"
)

// wheel runs the timers of an engine's sessions (heartbeat, connect
// timeout) from one goroutine and one ticker, instead of a runtime timer and
// a closure per session: a hashed timing wheel of slots, each a list of the
// entries due in it, advanced every tick. A deadline never fires early and
// at most two ticks late; a tick is a small fraction of the shortest
// interval timed (newWheel).
//
// An entry fires by calling its owner's onTimer (a session's) outside the
// wheel's lock; onTimer returns its next deadline, so moving a deadline later (a pong)
// costs nothing until the old one is reached. Only moving one earlier needs
// schedule. The goroutine runs only while some entry is queued.
type wheel struct {
	tick  time.Duration
	epoch time.Time

	mu      sync.Mutex
	slots   []*timerEntry // list heads
	cur     int64         // the last tick processed
	n       int           // entries queued or firing
	running bool
}

const (
	timerIdle uint8 = iota
	timerQueued
	timerFiring
	timerDead
)

// timerOwner is what a timerEntry fires: onTimer gets the wheel's now and
// returns the owner's next deadline, 0 for none.
type timerOwner interface {
	onTimer(now int64) int64
}

// timerEntry is a session's place in the wheel, under the wheel's lock.
type timerEntry struct {
	owner      timerOwner
	prev, next *timerEntry
	due        int64 // tick
	req        int64 // earliest deadline asked for while firing, in ticks; 0 none
	state      uint8
}

// wheelSlots spans the wheel: a deadline further than this many ticks away
// waits in its slot for more than one turn.
const wheelSlots = 512

// newWheel picks the tick from the shortest interval it will time: a
// sixteenth of it, between 1ms and 1s.
func newWheel(shortest time.Duration) *wheel {
	tick := min(max(shortest/16, time.Millisecond), time.Second)
	w := &wheel{tick: tick, epoch: time.Now(), slots: make([]*timerEntry, wheelSlots)}
	w.cur = w.now() / int64(w.tick)
	return w
}

// now is the time the sessions' deadlines are expressed in: nanoseconds
// since the wheel was made, from the monotonic clock.
func (w *wheel) now() int64 { return int64(time.Since(w.epoch)) }

// ticks rounds a deadline up to its tick.
func (w *wheel) ticks(at int64) int64 { return (at + int64(w.tick) - 1) / int64(w.tick) }

// schedule makes e fire at the latest at deadline at (see now). It never
// moves a queued entry later, and does nothing once e is removed.
func (w *wheel) schedule(e *timerEntry, at int64) {
	t := w.ticks(at)
	w.mu.Lock()
	defer w.mu.Unlock()
	switch e.state {
	case timerDead:
	case timerFiring:
		if e.req == 0 || t < e.req {
			e.req = t
		}
	case timerQueued:
		if t < e.due {
			w.unlink(e)
			w.link(e, t)
		}
	default:
		w.n++
		w.link(e, t)
		if !w.running {
			w.running = true
			go w.run()
		}
	}
}

// remove takes e out for good.
func (w *wheel) remove(e *timerEntry) {
	w.mu.Lock()
	switch e.state {
	case timerQueued:
		w.unlink(e)
		w.n--
	case timerFiring:
		w.n-- // its run sees timerDead and does not queue it again
	}
	e.state = timerDead
	w.mu.Unlock()
}

func (w *wheel) link(e *timerEntry, t int64) {
	if t <= w.cur {
		t = w.cur + 1
	}
	e.due, e.state = t, timerQueued
	i := t % wheelSlots
	e.prev, e.next = nil, w.slots[i]
	if e.next != nil {
		e.next.prev = e
	}
	w.slots[i] = e
}

func (w *wheel) unlink(e *timerEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		w.slots[e.due%wheelSlots] = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	}
	e.prev, e.next = nil, nil
}

func (w *wheel) run() {
	tk := time.NewTicker(w.tick)
	defer tk.Stop()
	var due []*timerEntry
	for range tk.C {
		now := w.now()
		// Rounded down, while deadlines are rounded up: never early.
		target := now / int64(w.tick)
		w.mu.Lock()
		if w.n == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		// After a stall every slot is visited once at most.
		from := max(w.cur+1, target-wheelSlots+1)
		for t := from; t <= target; t++ {
			for e := w.slots[t%wheelSlots]; e != nil; {
				next := e.next
				if e.due <= target {
					w.unlink(e)
					e.state = timerFiring
					due = append(due, e)
				}
				e = next
			}
		}
		w.cur = max(w.cur, target)
		w.mu.Unlock()

		for i, e := range due {
			at := e.owner.onTimer(now)
			w.mu.Lock()
			if e.state == timerFiring {
				t := e.req
				if at > 0 && (t == 0 || w.ticks(at) < t) {
					t = w.ticks(at)
				}
				e.req = 0
				if t > 0 {
					w.link(e, t)
				} else {
					e.state = timerIdle
					w.n--
				}
			}
			w.mu.Unlock()
			due[i] = nil
		}
		due = due[:0]
	}
}
