package gateway

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatstate/chatstate/internal/keys"
	"github.com/chatstate/chatstate/internal/redistest"
	dto "github.com/prometheus/client_model/go"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) count(sub string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), sub)
}

// A hub with no user to subscribe must not take an undialable connection
// for a restored one: it backs off, and neither counts a reconnect per
// attempt nor tells clients to resync while Redis is down.
func TestHubBacksOffWhileRedisIsDown(t *testing.T) {
	srv := redistest.StartServer(t)
	client := srv.Client(t)
	var logs syncBuffer
	h := newHub(client, keys.New(redistest.Prefix(t)), slog.New(slog.NewTextHandler(&logs, nil)), newMetrics(nil))
	var resubs atomic.Int64
	h.onResub = func(context.Context) { resubs.Add(1) }
	ctx, cancel := context.WithCancel(context.Background())
	if err := h.start(ctx); err != nil {
		t.Fatal(err)
	}
	defer h.close()
	defer cancel() // first: close may wait for the loop, which stops with ctx
	srv.Stop()
	deadline := time.Now().Add(20 * time.Second)
	for logs.count("redis pub/sub reconnect failed") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("no backoff while Redis is down: %d resubscriptions; log:\n%s", resubs.Load(), logs.tail(2000))
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	var m dto.Metric
	h.m.pubsubReconnects.Write(&m)
	if n := m.GetCounter().GetValue(); n != 1 || resubs.Load() != 0 {
		t.Fatalf("while Redis is down: %v reconnects counted, %d resyncs; want 1 and 0", n, resubs.Load())
	}
}

func (s *syncBuffer) tail(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.b.String()
	return b[max(0, len(b)-n):]
}
