package cache

import (
	"fmt"
	"testing"

	"github.com/chatstate/chatstate"
)

// testUnreadRuns: the counted seqs, kept as runs, count exactly what a set
// of seqs would, up to UnreadLimit, whatever breaks the runs (uncounted
// entries, skipped seqs) and however often the limit trims them; the key
// holds runs, not seqs.
func testUnreadRuns(t *testing.T, nc newClientFunc) {
	const limit = 10
	e := newEnv(t, nc, Config{UnreadLimit: limit})
	var counted []int64 // the reference set
	for i := 1; i <= 300; i++ {
		switch {
		case i%7 == 0:
			e.send("c", "alice", chatstate.TypeReaction, int64(i))
		case i%23 == 0:
			r, err := e.c.Reserve(e.ctx, "c", "alice", "")
			must(t, err)
			_, err = e.c.Settle(e.ctx, "c", r.Seq)
			must(t, err)
		default:
			counted = append(counted, e.send("c", "alice", "text", int64(i)).Seq)
			// Right after every add (and so after every trim) the newest
			// limit seqs are all there.
			if s := e.summary("c", "carol"); s.Unread != min(int64(len(counted)), limit) {
				t.Fatalf("after %d counted: unread %d", len(counted), s.Unread)
			}
		}
	}
	want := func(read int64) int64 {
		var n int64
		for _, s := range counted {
			if s > read {
				n++
			}
		}
		return min(n, limit)
	}
	for read := int64(0); read <= 300; read++ {
		must(t, e.c.FillReads(e.ctx, "c", map[string]int64{"bob": read}))
		e.do(e.client.B().Hset().Key(e.c.keys.Reads("c")).FieldValue().FieldValue("bob", itoa(read)).Build())
		if s := e.summary("c", "bob"); s.Unread != want(read) {
			t.Fatalf("unread above %d = %d, want %d", read, s.Unread, want(read))
		}
	}
	// At most limit + 64 seqs kept, as runs: every run here is <= 6 seqs
	// long, so that is at most (limit + 64) runs and the count member.
	if n := e.int(e.client.B().Zcard().Key(e.c.keys.Counted("c")).Build()); n > limit+64+1 {
		t.Fatalf("counted holds %d members", n)
	}

	// Adds in any order (a fill from the store, a resend republished
	// after data loss) merge into runs on both sides.
	must(t, e.c.FillSummary(e.ctx, "f", 20, nil, 5, 7, 6, 1, 3, 2, 10, 6))
	zs, err := e.do(e.client.B().Zrange().Key(e.c.keys.Counted("f")).Min("0").Max("+inf").Byscore().Withscores().Build()).AsZScores()
	must(t, err)
	var runs []string
	for _, z := range zs {
		runs = append(runs, z.Member+"-"+itoa(int64(z.Score)))
	}
	if fmt.Sprint(runs) != "[1-3 5-7 10-10]" {
		t.Fatalf("runs %v, want [1-3 5-7 10-10]", runs)
	}
	for read, n := range map[int64]int64{0: 7, 2: 5, 4: 4, 6: 2, 9: 1, 10: 0} {
		must(t, e.c.FillReads(e.ctx, "f", map[string]int64{"bob": read}))
		e.do(e.client.B().Hset().Key(e.c.keys.Reads("f")).FieldValue().FieldValue("bob", itoa(read)).Build())
		if s := e.summary("f", "bob"); s.Unread != n {
			t.Fatalf("filled: unread above %d = %d, want %d", read, s.Unread, n)
		}
	}
}
