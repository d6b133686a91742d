package main

import (
	"bytes"
	"slices"
	"strconv"
	"sync/atomic"
	"time"
)

// tracker counts, per sent message, whether the server acknowledged it and
// how many recipients got it. Indexing by message number (not a map) keeps
// the receive path lock-free: read loops of thousands of sockets hit it.
type tracker struct {
	want  []int32 // recipients expected per message (conversation size - 1)
	acked []atomic.Int32
	got   []atomic.Int32
	sent  []atomic.Int64 // unix nanos of the write, for the ack latency
	next  atomic.Int64   // next message number to hand out
}

func newTracker(capacity int) *tracker {
	return &tracker{want: make([]int32, capacity), acked: make([]atomic.Int32, capacity), got: make([]atomic.Int32, capacity),
		sent: make([]atomic.Int64, capacity)}
}

// reserve returns a fresh message number expecting want deliveries, or -1
// when the tracker is full (the send loop then stops: the run is bounded).
func (t *tracker) reserve(want int) int64 {
	n := t.next.Add(1) - 1
	if n >= int64(len(t.want)) {
		return -1
	}
	t.want[n] = int32(want)
	return n
}

// markSent records when message n was written.
func (t *tracker) markSent(n int64, at time.Time) {
	if n >= 0 && n < int64(len(t.sent)) {
		t.sent[n].Store(at.UnixNano())
	}
}

// sentAt is the write time of message n, zero if unknown.
func (t *tracker) sentAt(n int64) int64 {
	if n < 0 || n >= int64(len(t.sent)) {
		return 0
	}
	return t.sent[n].Load()
}

// ack records the server's answer to message n: 1 ok, 2 error.
func (t *tracker) ack(n int64, ok bool) {
	if n < 0 || n >= int64(len(t.acked)) {
		return
	}
	v := int32(2)
	if ok {
		v = 1
	}
	t.acked[n].Store(v)
}

// deliver counts one delivery of message n; false for a number never sent.
func (t *tracker) deliver(n int64) bool {
	if n < 0 || n >= t.next.Load() || n >= int64(len(t.got)) {
		return false
	}
	t.got[n].Add(1)
	return true
}

type tally struct {
	Sent       int64 `json:"sent"`        // messages emitted
	Acked      int64 `json:"acked"`       // ok acks
	AckErrors  int64 `json:"ackErrors"`   // error acks
	Unacked    int64 `json:"unacked"`     // no ack by the end of the drain
	Expected   int64 `json:"expected"`    // deliveries expected for acked messages
	Received   int64 `json:"received"`    // deliveries of acked messages, each counted at most once per recipient
	Lost       int64 `json:"lost"`        // expected - received
	Duplicates int64 `json:"duplicates"`  // deliveries beyond the expected count
	Stray      int64 `json:"strayDelivs"` // deliveries of messages without an ok ack
}

// count sums the tracker. It is safe to call while deliveries still arrive
// (the drain loop polls it).
func (t *tracker) count() tally {
	var s tally
	n := min(t.next.Load(), int64(len(t.want)))
	s.Sent = n
	for i := int64(0); i < n; i++ {
		got := int64(t.got[i].Load())
		switch t.acked[i].Load() {
		case 1:
			want := int64(t.want[i])
			s.Acked++
			s.Expected += want
			s.Received += min(got, want)
			s.Lost += max(want-got, 0)
			s.Duplicates += max(got-want, 0)
			continue
		case 2:
			s.AckErrors++
		default:
			s.Unacked++
		}
		s.Stray += got
	}
	return s
}

// percentile returns the p-th percentile (0..100) of sorted using the
// nearest-rank method; zero for no samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	if p <= 0 {
		return sorted[0]
	}
	rank := int(p/100*float64(len(sorted)) + 0.999999999)
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// mergeSorted concatenates per-socket latency samples and sorts them.
func mergeSorted(parts [][]time.Duration) []time.Duration {
	total := 0
	for _, p := range parts {
		total += len(p)
	}
	all := make([]time.Duration, 0, total)
	for _, p := range parts {
		all = append(all, p...)
	}
	slices.Sort(all)
	return all
}

// Message content is "bench:<number>:<send unix nanos>": the receiver finds
// both without decoding the whole event.
const contentPrefix = "bench:"

func formatContent(n int64, sent time.Time) string {
	return contentPrefix + strconv.FormatInt(n, 10) + ":" + strconv.FormatInt(sent.UnixNano(), 10)
}

// parseDelivery extracts the message number and send time from a
// message:new packet; ok is false for anything that is not a bench message.
func parseDelivery(packet []byte) (n int64, sent int64, ok bool) {
	const marker = `"content":"` + contentPrefix
	i := bytes.Index(packet, []byte(marker))
	if i < 0 {
		return 0, 0, false
	}
	rest := packet[i+len(marker):]
	n, rest, ok = leadingInt(rest)
	if !ok || len(rest) == 0 || rest[0] != ':' {
		return 0, 0, false
	}
	sent, rest, ok = leadingInt(rest[1:])
	if !ok || len(rest) == 0 || rest[0] != '"' {
		return 0, 0, false
	}
	return n, sent, true
}

func leadingInt(b []byte) (int64, []byte, bool) {
	var v int64
	i := 0
	for ; i < len(b) && i < 19 && b[i] >= '0' && b[i] <= '9'; i++ {
		v = v*10 + int64(b[i]-'0')
	}
	return v, b[i:], i > 0
}
