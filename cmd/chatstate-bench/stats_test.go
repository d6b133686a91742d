package main

import (
	"testing"
	"time"
)

func TestPercentileNearestRank(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{0, 1 * time.Millisecond}, {50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {99.5, 100 * time.Millisecond}, {100, 100 * time.Millisecond}} {
		if got := percentile(s, tc.p); got != tc.want {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("empty: %v", got)
	}
	one := []time.Duration{7}
	if percentile(one, 1) != 7 || percentile(one, 99) != 7 {
		t.Error("single sample must be every percentile")
	}
}

func TestMergeSorted(t *testing.T) {
	got := mergeSorted([][]time.Duration{{5, 1}, nil, {3, 2, 4}})
	for i, v := range got {
		if v != time.Duration(i+1) {
			t.Fatalf("got %v, want 1..5", got)
		}
	}
	if len(got) != 5 {
		t.Fatalf("len %d", len(got))
	}
}

func TestTrackerCountsLostDuplicatesAndStray(t *testing.T) {
	tr := newTracker(10)
	a := tr.reserve(3) // acked, 2 of 3 delivered: 1 lost
	b := tr.reserve(2) // acked, 3 deliveries: 1 duplicate
	c := tr.reserve(4) // error ack, 1 stray delivery
	d := tr.reserve(1) // never acked
	tr.ack(a, true)
	tr.ack(b, true)
	tr.ack(c, false)
	for _, n := range []int64{a, a, b, b, b, c} {
		if !tr.deliver(n) {
			t.Fatalf("deliver(%d) refused", n)
		}
	}
	if tr.deliver(d+1) || tr.deliver(-1) || tr.deliver(1000) {
		t.Fatal("delivery of a message never sent was accepted")
	}
	got := tr.count()
	want := tally{Sent: 4, Acked: 2, AckErrors: 1, Unacked: 1, Expected: 5, Received: 4, Lost: 1, Duplicates: 1, Stray: 1}
	if got != want {
		t.Fatalf("count = %+v\nwant    %+v", got, want)
	}
}

func TestTrackerFull(t *testing.T) {
	tr := newTracker(2)
	if tr.reserve(1) != 0 || tr.reserve(1) != 1 {
		t.Fatal("first two numbers")
	}
	if n := tr.reserve(1); n != -1 {
		t.Fatalf("full tracker handed out %d", n)
	}
	if got := tr.count().Sent; got != 2 {
		t.Fatalf("sent %d, want 2", got)
	}
}

func TestParseDeliveryRoundTrip(t *testing.T) {
	at := time.Unix(1700000000, 123456789)
	pkt := []byte(`42["message:new",{"message":{"clientMessageId":"x-42","content":"` + formatContent(42, at) + `","conversationId":"c","seq":3}}]`)
	n, sent, ok := parseDelivery(pkt)
	if !ok || n != 42 || sent != at.UnixNano() {
		t.Fatalf("got %d %d %v", n, sent, ok)
	}
	for _, bad := range []string{
		`42["message:new",{"message":{"content":"hello"}}]`,
		`42["message:new",{"message":{"content":"bench:x:1"}}]`,
		`42["message:new",{"message":{"content":"bench:1:"}}]`,
		`42["message:new",{"message":{"content":"bench:1:2x"}}]`,
		`42["message:new",{"message":{"content":"bench:1`,
	} {
		if _, _, ok := parseDelivery([]byte(bad)); ok {
			t.Errorf("parsed %s", bad)
		}
	}
}

func TestParseProc(t *testing.T) {
	rss, err := parseVmRSS([]byte("Name:\tchatstate\nVmPeak:\t 100 kB\nVmRSS:\t   2048 kB\nThreads: 7\n"))
	if err != nil || rss != 2048*1024 {
		t.Fatalf("VmRSS = %d, %v", rss, err)
	}
	if _, err := parseVmRSS([]byte("Name: x\n")); err == nil {
		t.Fatal("missing VmRSS accepted")
	}
	// A command name with spaces and a ')' must not shift the fields.
	stat := []byte("123 (chat state) x) S 1 123 123 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 1000 0 0")
	cpu, err := parseStatCPU(stat)
	if err != nil || cpu != 3*time.Second {
		t.Fatalf("cpu = %v, %v (want 3s from 250+50 ticks)", cpu, err)
	}
	if _, err := parseStatCPU([]byte("123 (x) S 1")); err == nil {
		t.Fatal("short stat accepted")
	}
}

func TestCheckLoopback(t *testing.T) {
	for _, ok := range []string{"http://127.0.0.1:8080", "http://127.0.0.5:1", "http://localhost:8080", "http://[::1]:8080"} {
		if err := checkLoopback(ok); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"http://10.0.0.1:8080", "http://example.com", "http://0.0.0.0:8080"} {
		if err := checkLoopback(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
