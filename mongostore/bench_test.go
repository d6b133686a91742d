package mongostore_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/mongostore"
)

// BenchmarkInsertMessages measures persisted messages per second for the
// send path's group-commit batch sizes, from one goroutine and from 64
// concurrent ones (each on its own conversation, as distinct chats are).
// Against FerretDB-on-SQLite (the default here) the numbers are far below a
// real MongoDB: set MONGODB_URI to measure one.
//
//	go test -run '^$' -bench InsertMessages -benchtime 2s ./mongostore
func BenchmarkInsertMessages(b *testing.B) {
	for _, workers := range []int{1, 64} {
		for _, batch := range []int{1, 16, 128} {
			b.Run(fmt.Sprintf("batch=%d/goroutines=%d", batch, workers), func(b *testing.B) {
				s := open(b, mongostore.Config{})
				var next atomic.Int64 // batches handed out
				var seqs [64]int64
				b.ResetTimer()
				start := time.Now()
				var wg sync.WaitGroup
				var failed atomic.Value
				for w := range workers {
					wg.Go(func() {
						conv := fmt.Sprintf("c%d", w)
						msgs := make([]chatstate.Message, batch)
						for next.Add(1) <= int64(b.N) {
							for i := range msgs {
								seqs[w]++
								msgs[i] = chatstate.Message{
									ID: fmt.Sprintf("m%d-%d", w, seqs[w]), ConversationID: conv, SenderID: "u",
									Content: "a typical short chat message of about sixty bytes......",
									Type:    "text", CreatedAt: 1700000000000, Seq: seqs[w],
									ClientMessageID: fmt.Sprintf("cm%d-%d", w, seqs[w]),
								}
							}
							errs, err := s.InsertMessages(ctx(b), msgs)
							if err == nil {
								for _, e := range errs {
									if e != nil {
										err = e
										break
									}
								}
							}
							if err != nil {
								failed.Store(err)
								return
							}
						}
					})
				}
				wg.Wait()
				elapsed := time.Since(start)
				if err, _ := failed.Load().(error); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(b.N*batch)/elapsed.Seconds(), "msgs/s")
			})
		}
	}
}
