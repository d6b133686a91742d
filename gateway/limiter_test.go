package gateway

import (
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	var b bucket
	now := time.Unix(0, 0)
	for i := 0; i < 3; i++ {
		if ok, _ := b.take(now, 10, 3); !ok {
			t.Fatalf("burst token %d refused", i)
		}
	}
	ok, wait := b.take(now, 10, 3)
	if ok || wait != 100*time.Millisecond {
		t.Fatalf("empty bucket: ok=%v wait=%v", ok, wait)
	}
	if ok, _ := b.take(now.Add(100*time.Millisecond), 10, 3); !ok {
		t.Fatal("refilled after 100ms at 10/s")
	}
	if ok, _ := b.take(now.Add(10*time.Second), 10, 3); !ok {
		t.Fatal("refill is capped at burst, not lost")
	}
	for i := 0; i < 2; i++ {
		b.take(now.Add(10*time.Second), 10, 3)
	}
	if ok, _ := b.take(now.Add(10*time.Second), 10, 3); ok {
		t.Fatal("a long pause refills only up to burst")
	}
}
