package sqlitestore

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
)

// BenchmarkInsertMessages measures messages persisted per second (msgs/s)
// with 64 concurrent inserters, each sending batches of the given size, as
// the send path's group commit would. b.N counts messages, so ns/op is per
// message.
//
//	go test ./sqlitestore -run '^$' -bench InsertMessages -benchtime 2s
func BenchmarkInsertMessages(b *testing.B) {
	const inserters = 64
	content := strings.Repeat("a chat message of realistic size ", 4) // ~130 bytes
	for _, mode := range []string{"full", "normal"} {
		for _, batch := range []int{1, 16, 128} {
			b.Run(fmt.Sprintf("sync=%s/batch=%d", mode, batch), func(b *testing.B) {
				s := open(b, filepath.Join(b.TempDir(), "bench.db"), Config{Synchronous: mode, StoreLimits: chatstate.StoreLimits{MaxBatch: batch}})
				defer s.Close(ctx(b))
				var left atomic.Int64
				left.Store(int64(b.N))
				var failed atomic.Pointer[error]
				var wg sync.WaitGroup
				b.ResetTimer()
				start := time.Now()
				for w := range inserters {
					wg.Go(func() {
						conv, sender := fmt.Sprintf("c%d", w), fmt.Sprintf("u%d", w)
						seq := int64(0)
						msgs := make([]chatstate.Message, 0, batch)
						for {
							n := min(int64(batch), left.Add(-int64(batch))+int64(batch))
							if n <= 0 {
								return
							}
							msgs = msgs[:0]
							for range n {
								seq++
								msgs = append(msgs, chatstate.Message{
									ID: fmt.Sprintf("m-%d-%d", w, seq), ConversationID: conv, SenderID: sender,
									Content: content, Type: "text", CreatedAt: 1700000000000 + seq, Seq: seq,
									ClientMessageID: fmt.Sprintf("k-%d-%d", w, seq),
								})
							}
							errs, err := s.InsertMessages(ctx(b), msgs)
							for _, e := range errs {
								err = cmpErr(err, e)
							}
							if err != nil {
								failed.Store(&err)
								return
							}
						}
					})
				}
				wg.Wait()
				elapsed := time.Since(start)
				b.StopTimer()
				if err := failed.Load(); err != nil {
					b.Fatal(*err)
				}
				b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
			})
		}
	}
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
