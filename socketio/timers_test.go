package socketio

import (
	"math"
	"sync"
	"testing"
	"time"
)

// testOwner asks the timer queue for its deadlines one after the other and
// records every firing that came before the deadline it waited for.
type testOwner struct {
	mu    sync.Mutex
	due   []int64 // deadlines still to come; due[0] is the one waited for
	early []int64 // firings before due[0]
	fired int
	done  chan struct{}
	// onFire, when set, runs inside onTimer (like a session closing
	// itself from its heartbeat).
	onFire func()
}

func newTestOwner(due ...int64) *testOwner {
	return &testOwner{due: due, done: make(chan struct{})}
}

func (o *testOwner) onTimer(now int64) int64 {
	if o.onFire != nil {
		o.onFire()
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fired++
	if len(o.due) == 0 {
		return 0
	}
	if now < o.due[0] {
		o.early = append(o.early, now)
		return o.due[0]
	}
	o.due = o.due[1:]
	if len(o.due) == 0 {
		close(o.done)
		return 0
	}
	return o.due[0]
}

func waitDone(t *testing.T, ch chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("timer did not fire")
	}
}

// waitIdle polls until the queue's goroutine has ended.
func waitIdle(t *testing.T, w *timerQueue) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		w.mu.Lock()
		running, n := w.running, w.n
		w.mu.Unlock()
		if !running && n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timer queue still running with %d entries", n)
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
}

func ms(n int) int64 { return int64(time.Duration(n) * time.Millisecond) }

// Deadlines, several per entry and of many entries in any order, fire and
// never before their time; the goroutine ends once nothing is queued.
func TestTimerQueueFires(t *testing.T) {
	w := newTimerQueue()
	var owners []*testOwner
	for i := range 50 {
		now := w.now()
		k := (i * 37) % 50 // deadlines not in the order they are queued
		o := newTestOwner(now+ms(k+5), now+ms(k+25), now+ms(k+60))
		w.schedule(&timerEntry{owner: o}, o.due[0])
		owners = append(owners, o)
	}
	for i, o := range owners {
		waitDone(t, o.done)
		o.mu.Lock()
		if len(o.early) > 0 {
			t.Errorf("owner %d fired early at %v", i, o.early)
		}
		o.mu.Unlock()
	}
	waitIdle(t, w)
}

// schedule moves a queued deadline earlier, never later; a deadline asked
// for while the entry fires is kept when it is the earlier one.
func TestTimerQueueScheduleEarlier(t *testing.T) {
	w := newTimerQueue()
	now := w.now()
	o := newTestOwner(now+ms(20), now+int64(time.Hour))
	e := &timerEntry{owner: o}
	w.schedule(e, now+int64(time.Hour))
	w.schedule(e, now+ms(20))
	w.schedule(e, now+int64(2*time.Hour)) // ignored: later
	deadline := time.Now().Add(5 * time.Second)
	for {
		o.mu.Lock()
		left := len(o.due)
		o.mu.Unlock()
		if left == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the earlier deadline did not fire")
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
	// While firing: the owner asks for an hour, schedule asks for now.
	fired := make(chan struct{})
	var once sync.Once
	o2 := newTestOwner(w.now()+ms(10), w.now()+int64(time.Hour))
	e2 := &timerEntry{owner: o2}
	o2.onFire = func() {
		once.Do(func() {
			w.schedule(e2, w.now()+ms(10))
			close(fired)
		})
	}
	w.schedule(e2, o2.due[0])
	<-fired
	deadline = time.Now().Add(5 * time.Second)
	for {
		o2.mu.Lock()
		n := o2.fired
		o2.mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the deadline asked for while firing was lost")
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
	w.remove(e)
	w.remove(e2)
	waitIdle(t, w)
}

// A removed entry never fires, also when it is removed by its own onTimer
// (which still returns a deadline), and cannot be scheduled again.
func TestTimerQueueRemove(t *testing.T) {
	w := newTimerQueue()
	now := w.now()
	gone := newTestOwner(now + ms(20))
	eGone := &timerEntry{owner: gone}
	w.schedule(eGone, gone.due[0])
	w.remove(eGone)
	w.schedule(eGone, now+ms(20))

	self := newTestOwner(now+ms(10), now+ms(30), now+ms(50))
	eSelf := &timerEntry{owner: self}
	self.onFire = func() { w.remove(eSelf) }
	w.schedule(eSelf, self.due[0])

	later := newTestOwner(now+ms(80), now+ms(90))
	w.schedule(&timerEntry{owner: later}, later.due[0])
	waitDone(t, later.done)
	waitIdle(t, w)
	if gone.fired != 0 {
		t.Fatalf("removed entry fired %d times", gone.fired)
	}
	if self.fired != 1 {
		t.Fatalf("entry removed while firing fired %d times", self.fired)
	}
}

// The heap stays ordered through pushes, earlier deadlines and removals in
// any order (checked directly, without the goroutine).
func TestTimerQueueHeap(t *testing.T) {
	q := &timerQueue{}
	var es []*timerEntry
	for i := range 200 {
		e := &timerEntry{}
		q.push(e, int64((i*7919)%1000+1))
		es = append(es, e)
	}
	check := func() {
		t.Helper()
		for i, e := range q.heap {
			if int(e.idx) != i {
				t.Fatalf("entry at %d has idx %d", i, e.idx)
			}
			if i > 0 && q.heap[(i-1)/2].due > e.due {
				t.Fatalf("heap order broken at %d", i)
			}
		}
	}
	check()
	for i := 0; i < len(es); i += 3 {
		es[i].due -= 500
		q.up(int(es[i].idx))
	}
	check()
	for i := 1; i < len(es); i += 2 {
		q.delete(int(es[i].idx))
		check()
	}
	last := int64(math.MinInt64)
	for len(q.heap) > 0 {
		e := q.heap[0]
		q.delete(0)
		if e.due < last {
			t.Fatalf("popped %d after %d", e.due, last)
		}
		last = e.due
	}
}
