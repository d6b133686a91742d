package presence

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/redistest"
)

// Benchmarks run >= 128 concurrent callers (SetParallelism(64) on 2 cores)
// against the shared redistest server and report ops/s of service calls.
// Run: go test -run '^$' -bench . -benchtime 2s ./presence/

const benchUsers = 10000

var benchIDs = func() []string {
	ids := make([]string, benchUsers)
	for i := range ids {
		ids[i] = fmt.Sprintf("user%05d", i)
	}
	return ids
}()

func benchState(b *testing.B, populate bool) *State {
	b.Helper()
	c, prefix := redistest.Start(b)
	s := New(c, Config{KeyPrefix: prefix, NodeID: "bench"})
	ctx := context.Background()
	if err := s.Heartbeat(ctx); err != nil {
		b.Fatal(err)
	}
	if populate {
		var wg sync.WaitGroup
		for w := 0; w < 32; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < benchUsers; i += 32 {
					for _, d := range []string{"d0", "d1"} {
						if _, err := s.SetUserOnline(ctx, benchIDs[i], d, "sock"); err != nil {
							b.Error(err)
							return
						}
					}
				}
			}()
		}
		wg.Wait()
	}
	return s
}

func runParallel(b *testing.B, op func(ctx context.Context, i int) error) {
	b.Helper()
	ctx := context.Background()
	var n atomic.Int64
	b.SetParallelism(64)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := op(ctx, int(n.Add(1))); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

func BenchmarkSetUserOnline(b *testing.B) {
	s := benchState(b, false)
	runParallel(b, func(ctx context.Context, i int) error {
		_, err := s.SetUserOnline(ctx, benchIDs[i%benchUsers], fmt.Sprintf("d%d", i%3), "sock")
		return err
	})
}

// SetUserOffline of users with two devices: the first benchUsers ops remove
// a device, later ones are no-ops with the same read-and-prune work.
func BenchmarkSetUserOffline(b *testing.B) {
	s := benchState(b, true)
	runParallel(b, func(ctx context.Context, i int) error {
		_, err := s.SetUserOffline(ctx, benchIDs[i%benchUsers], "d0")
		return err
	})
}

func BenchmarkTouchDevice(b *testing.B) {
	s := benchState(b, true)
	runParallel(b, func(ctx context.Context, i int) error {
		return s.TouchDevice(ctx, benchIDs[i%benchUsers], "d1")
	})
}

func BenchmarkUpdateUserStatus(b *testing.B) {
	s := benchState(b, true)
	statuses := []chatstate.Status{chatstate.StatusAway, chatstate.StatusOnline, chatstate.StatusBusy}
	runParallel(b, func(ctx context.Context, i int) error {
		_, err := s.UpdateUserStatus(ctx, benchIDs[i%benchUsers], statuses[i%3])
		return err
	})
}

func BenchmarkIsUserOnline(b *testing.B) {
	s := benchState(b, true)
	runParallel(b, func(ctx context.Context, i int) error {
		_, err := s.IsUserOnline(ctx, benchIDs[i%benchUsers])
		return err
	})
}

// Presence of 50 users per call (a friend list screen).
func BenchmarkPresence50(b *testing.B) {
	s := benchState(b, true)
	runParallel(b, func(ctx context.Context, i int) error {
		start := (i * 50) % (benchUsers - 50)
		m, err := s.Presence(ctx, benchIDs[start:start+50]...)
		if err == nil && len(m) != 50 {
			err = fmt.Errorf("got %d entries", len(m))
		}
		return err
	})
	b.ReportMetric(50*float64(b.N)/b.Elapsed().Seconds(), "users/s")
}

// OnlineUsers pages of 100, each caller walking the index from the start.
func BenchmarkOnlineUsers100(b *testing.B) {
	s := benchState(b, true)
	ctx := context.Background()
	var n atomic.Int64
	b.SetParallelism(64)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var cursor uint64
		for pb.Next() {
			page, err := s.OnlineUsers(ctx, cursor, 100)
			if err != nil {
				b.Error(err)
				return
			}
			n.Add(int64(len(page.UserIDs)))
			cursor = page.Cursor
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
	b.ReportMetric(float64(n.Load())/b.Elapsed().Seconds(), "users/s")
}

func BenchmarkSetUserTyping(b *testing.B) {
	s := benchState(b, false)
	runParallel(b, func(ctx context.Context, i int) error {
		return s.SetUserTyping(ctx, benchIDs[i%benchUsers], fmt.Sprintf("conv%d", i%1000))
	})
}

func BenchmarkStopUserTyping(b *testing.B) {
	s := benchState(b, false)
	runParallel(b, func(ctx context.Context, i int) error {
		return s.StopUserTyping(ctx, benchIDs[i%benchUsers], fmt.Sprintf("conv%d", i%1000))
	})
}

func BenchmarkTypingUsers(b *testing.B) {
	s := benchState(b, false)
	ctx := context.Background()
	for i := 0; i < 5000; i++ { // 5 typers in each of 1000 conversations
		if err := s.SetUserTyping(ctx, benchIDs[i], fmt.Sprintf("conv%d", i%1000)); err != nil {
			b.Fatal(err)
		}
	}
	runParallel(b, func(ctx context.Context, i int) error {
		_, err := s.TypingUsers(ctx, fmt.Sprintf("conv%d", i%1000))
		return err
	})
}

func BenchmarkHeartbeat(b *testing.B) {
	s := benchState(b, false)
	runParallel(b, func(ctx context.Context, i int) error { return s.Heartbeat(ctx) })
}
