package httpapi

import (
	"context"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// Readiness fails as soon as the node drains, while Redis is still fine and
// liveness still passes.
func TestReadyzFailsWhileDraining(t *testing.T) {
	var draining atomic.Bool
	srv := httptest.NewServer(New(Config{}, Deps{
		Ping:     func(context.Context) error { return nil },
		Draining: draining.Load,
	}))
	t.Cleanup(srv.Close)
	if status, body := call(t, srv, "GET", "/readyz", "", ""); status != 200 || body["status"] != "ok" {
		t.Fatalf("before the drain: %d %v", status, body)
	}
	draining.Store(true)
	if status, body := call(t, srv, "GET", "/readyz", "", ""); status != 503 || body["status"] != "draining" {
		t.Fatalf("draining: %d %v, want 503 draining", status, body)
	}
	for _, path := range []string{"/healthz", "/redis/health"} {
		if status, _ := call(t, srv, "GET", path, "", ""); status != 200 {
			t.Errorf("%s while draining: %d, want 200", path, status)
		}
	}
}
