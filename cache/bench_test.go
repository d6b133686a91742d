package cache

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/redistest"
)

// Run with: go test -run '^$' -bench . -benchtime 2s ./cache/
//
// Every benchmark runs >= 128 concurrent callers on one shared rueidis client
// (auto-pipelined), the way gateway nodes use it, and reports ops/s.

const benchUsers = 1000

func benchCache(b *testing.B, cfg Config) (*Cache, context.Context) {
	b.Helper()
	client, prefix := redistest.Start(b)
	cfg.KeyPrefix = prefix
	return New(client, cfg), redistest.Ctx(b)
}

// runParallel calls fn from 64 goroutines per GOMAXPROCS (>= 128 on 2
// cores); i is a unique call number for picking users and conversations.
func runParallel(b *testing.B, fn func(i int64) error) {
	b.Helper()
	var n atomic.Int64
	b.SetParallelism(64)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := fn(n.Add(1)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
}

func user(i int64) string { return fmt.Sprintf("user%d", i%benchUsers) }

func BenchmarkAddMessage(b *testing.B) {
	c, ctx := benchCache(b, Config{})
	runParallel(b, func(i int64) error {
		_, _, err := c.AddMessage(ctx, chatstate.Message{
			ConversationID: fmt.Sprintf("conv%d", i%100), SenderID: user(i),
			Content: "hello there, how are you doing today?", ClientMessageID: fmt.Sprintf("cm%d", i),
		})
		return err
	})
}

func BenchmarkMessages(b *testing.B) {
	c, ctx := benchCache(b, Config{})
	for i := 0; i < 100; i++ {
		if _, _, err := c.AddMessage(ctx, chatstate.Message{ConversationID: "conv", SenderID: "u", Content: "hello there, how are you doing today?"}); err != nil {
			b.Fatal(err)
		}
	}
	runParallel(b, func(i int64) error {
		m, err := c.Messages(ctx, "conv", 80, 50)
		if err == nil && len(m) != 20 {
			err = fmt.Errorf("got %d messages", len(m))
		}
		return err
	})
}

func BenchmarkCreateSession(b *testing.B) {
	c, ctx := benchCache(b, Config{})
	runParallel(b, func(i int64) error {
		_, err := c.CreateSession(ctx, chatstate.Session{UserID: user(i), DeviceID: fmt.Sprintf("dev%d", i%3), Data: map[string]string{"os": "android", "app": "3.2.1"}})
		return err
	})
}

func benchSessions(b *testing.B) (*Cache, context.Context) {
	c, ctx := benchCache(b, Config{})
	for u := int64(0); u < benchUsers; u++ {
		for d := 0; d < 3; d++ {
			if _, err := c.CreateSession(ctx, chatstate.Session{UserID: user(u), DeviceID: fmt.Sprintf("dev%d", d), Data: map[string]string{"os": "android"}}); err != nil {
				b.Fatal(err)
			}
		}
	}
	return c, ctx
}

func BenchmarkUpdateSessionActivity(b *testing.B) {
	c, ctx := benchSessions(b)
	runParallel(b, func(i int64) error {
		_, err := c.UpdateSessionActivity(ctx, user(i), fmt.Sprintf("dev%d", i%3))
		return err
	})
}

func BenchmarkSession(b *testing.B) {
	c, ctx := benchSessions(b)
	runParallel(b, func(i int64) error {
		_, err := c.Session(ctx, user(i), fmt.Sprintf("dev%d", i%3))
		return err
	})
}

func BenchmarkSessions(b *testing.B) {
	c, ctx := benchSessions(b)
	runParallel(b, func(i int64) error {
		s, err := c.Sessions(ctx, user(i))
		if err == nil && len(s) != 3 {
			err = fmt.Errorf("got %d sessions", len(s))
		}
		return err
	})
}

func friends(n int) []string {
	f := make([]string, n)
	for i := range f {
		f[i] = fmt.Sprintf("friend%d", i)
	}
	return f
}

func BenchmarkCacheFriendList(b *testing.B) {
	c, ctx := benchCache(b, Config{})
	list := friends(100)
	runParallel(b, func(i int64) error { return c.CacheFriendList(ctx, user(i), list) })
}

func BenchmarkFriendList(b *testing.B) {
	c, ctx := benchCache(b, Config{})
	list := friends(100)
	for u := int64(0); u < benchUsers; u++ {
		if err := c.CacheFriendList(ctx, user(u), list); err != nil {
			b.Fatal(err)
		}
	}
	runParallel(b, func(i int64) error {
		f, found, err := c.FriendList(ctx, user(i))
		if err == nil && (!found || len(f) != 100) {
			err = fmt.Errorf("found=%v len %d", found, len(f))
		}
		return err
	})
}

func BenchmarkIsFriend(b *testing.B) {
	c, ctx := benchCache(b, Config{})
	list := friends(100)
	for u := int64(0); u < benchUsers; u++ {
		if err := c.CacheFriendList(ctx, user(u), list); err != nil {
			b.Fatal(err)
		}
	}
	runParallel(b, func(i int64) error {
		_, found, err := c.IsFriend(ctx, user(i), fmt.Sprintf("friend%d", i%200))
		if err == nil && !found {
			err = fmt.Errorf("miss")
		}
		return err
	})
}

func BenchmarkAddNotification(b *testing.B) {
	c, ctx := benchCache(b, Config{})
	runParallel(b, func(i int64) error {
		p := chatstate.PriorityNormal
		if i%10 == 0 {
			p = chatstate.PriorityHigh
		}
		_, err := c.AddNotification(ctx, chatstate.Notification{UserID: user(i), Priority: p, Title: "New message", Body: "alice: hello there", Data: map[string]string{"conversationId": "conv1"}})
		return err
	})
}

func BenchmarkNotifications(b *testing.B) {
	c, ctx := benchCache(b, Config{})
	for u := int64(0); u < 100; u++ {
		for k := 0; k < 20; k++ {
			if _, err := c.AddNotification(ctx, chatstate.Notification{UserID: user(u), Title: "New message", Body: "alice: hello"}); err != nil {
				b.Fatal(err)
			}
		}
	}
	runParallel(b, func(i int64) error {
		_, err := c.Notifications(ctx, user(i%100), 20)
		return err
	})
}

func BenchmarkCheckRateLimit(b *testing.B) {
	c, ctx := benchCache(b, Config{})
	runParallel(b, func(i int64) error {
		_, err := c.CheckRateLimit(ctx, user(i), "send_message", 30, time.Minute)
		return err
	})
}

func BenchmarkLogSecurityEvent(b *testing.B) {
	c, ctx := benchCache(b, Config{})
	runParallel(b, func(i int64) error {
		return c.LogSecurityEvent(ctx, user(i), chatstate.SecurityEvent{Type: "login", IP: "203.0.113.7", DeviceID: "dev1"})
	})
}

func BenchmarkSecurityEvents(b *testing.B) {
	c, ctx := benchCache(b, Config{})
	for u := int64(0); u < 100; u++ {
		for k := 0; k < 20; k++ {
			if err := c.LogSecurityEvent(ctx, user(u), chatstate.SecurityEvent{Type: "login", IP: "203.0.113.7"}); err != nil {
				b.Fatal(err)
			}
		}
	}
	runParallel(b, func(i int64) error {
		_, err := c.SecurityEvents(ctx, user(i%100), 20)
		return err
	})
}

func BenchmarkStats(b *testing.B) {
	c, ctx := benchCache(b, Config{})
	runParallel(b, func(i int64) error {
		_, err := c.Stats(ctx)
		return err
	})
}

// BenchmarkConversationPage reads one page of 20 (the list page and its
// summaries, two round trips) from lists of 100 and 100000 conversations:
// the cost must not grow with the list.
func BenchmarkConversationPage(b *testing.B) {
	for _, n := range []int{100, 1000, 100000} {
		b.Run(fmt.Sprintf("convs=%d", n), func(b *testing.B) {
			c, ctx := benchCache(b, Config{})
			list := make([]chatstate.ConversationActivity, n)
			for i := range list {
				list[i] = chatstate.ConversationActivity{ID: fmt.Sprintf("c%d", i), LastActivity: int64(1e12) + int64(i)}
			}
			for i := 0; i < n; i += 10000 {
				if err := c.FillConversationList(ctx, "u", list[i:min(i+10000, n)]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			cursor := ""
			for i := 0; i < b.N; i++ {
				p, err := c.ConversationPage(ctx, "u", 20, cursor)
				if err != nil || len(p.Entries) != 20 {
					b.Fatalf("page: %d entries, %v", len(p.Entries), err)
				}
				ids := make([]string, len(p.Entries))
				for j, e := range p.Entries {
					ids[j] = e.ID
				}
				if _, err := c.Summaries(ctx, "u", ids); err != nil {
					b.Fatal(err)
				}
				if cursor = p.Cursor; i%50 == 49 {
					cursor = "" // stay within the list
				}
			}
		})
	}
}
