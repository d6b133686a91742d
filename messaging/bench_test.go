package messaging

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/cache"
	"github.com/chatstate/chatstate/internal/redistest"
)

// BenchmarkSend measures the whole durable send (dedupe lookup, seq,
// group-committed insert into SQLite, cache + publish to a channel nobody
// reads) with 128 concurrent senders in 64 conversations: messages
// persisted per second.
func BenchmarkSend(b *testing.B) {
	client, prefix := redistest.Start(b)
	f := setupB(b, client, prefix)
	var n atomic.Int64
	b.SetParallelism(64)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			_, err := f.svc.Send(f.ctx, chatstate.Message{ConversationID: fmt.Sprint("c", i%64), SenderID: "alice",
				ClientMessageID: fmt.Sprint("cm", i), Content: "a benchmark message of ordinary length", Type: "text"},
				cache.Publish{Channel: f.ch + ":bench"})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
