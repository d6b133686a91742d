package main

import (
	"strings"
	"testing"
)

func TestParseGoMetrics(t *testing.T) {
	text := `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 33
go_memstats_heap_alloc_bytes 4.2168992e+07
go_memstats_heap_inuse_bytes 5.3149696e+07
go_memstats_heap_inuse_bytes_total 1
go_memstats_stack_inuse_bytes 1.933312e+06
go_gc_duration_seconds{quantile="0"} 1.5e-05
`
	s, err := parseGoMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if s != (goStats{Goroutines: 33, HeapAlloc: 42168992, HeapInuse: 53149696, StackInuse: 1933312}) {
		t.Fatalf("%+v", s)
	}
	if _, err := parseGoMetrics(strings.NewReader("go_goroutines 3\n")); err == nil {
		t.Fatal("missing metrics accepted")
	}
	if _, err := parseGoMetrics(strings.NewReader("go_goroutines x\n")); err == nil {
		t.Fatal("bad value accepted")
	}
	pc := perConn(&goStats{Goroutines: 30, HeapInuse: 1000}, &goStats{Goroutines: 40, HeapInuse: 3000}, 10)
	if pc.Goroutines != 1 || pc.HeapInuse != 200 {
		t.Fatalf("%+v", pc)
	}
	if perConn(nil, &goStats{}, 10) != nil {
		t.Fatal("per connection figures without a baseline")
	}
}

func TestAutoSrcIPs(t *testing.T) {
	if n := autoSrcIPs(1000); n != 1 {
		t.Fatalf("1,000 connections: %d addresses", n)
	}
	if n := autoSrcIPs(50000); n < 2 {
		t.Fatalf("50,000 connections: %d addresses (one has at most 64k ports)", n)
	}
	if n := autoSrcIPs(60000); n > 250 || n < autoSrcIPs(50000) {
		t.Fatalf("60,000 connections: %d addresses", n)
	}
}
