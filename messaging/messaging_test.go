package messaging

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/cache"
	"github.com/chatstate/chatstate/internal/keys"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/chatstate/chatstate/sqlitestore"
	"github.com/redis/rueidis"
)

func TestMain(m *testing.M) { os.Exit(redistest.Run(m)) }

type fixture struct {
	ctx    context.Context
	client rueidis.Client
	cache  *cache.Cache
	store  *sqlitestore.Store
	svc    *Service
	pubs   chan string
	ch     string
}

func setup(t *testing.T, client rueidis.Client, prefix string, cfg cache.Config) *fixture {
	return setupTB(t, client, prefix, cfg)
}

func setupB(b *testing.B, client rueidis.Client, prefix string) *fixture {
	return setupTB(b, client, prefix, cache.Config{})
}

func setupTB(t testing.TB, client rueidis.Client, prefix string, cfg cache.Config) *fixture {
	t.Helper()
	ctx := redistest.Ctx(t)
	store, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "db.sqlite"), sqlitestore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close(context.Background()) })
	cfg.KeyPrefix = prefix
	c := cache.New(client, cfg)
	svc := New(c, store, Config{})
	runCtx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	go svc.Run(runCtx)
	f := &fixture{ctx: ctx, client: client, cache: c, store: store, svc: svc, pubs: make(chan string, 1000), ch: prefix + "ch"}
	sub, release := client.Dedicate()
	t.Cleanup(release)
	sub.SetPubSubHooks(rueidis.PubSubHooks{OnMessage: func(m rueidis.PubSubMessage) { f.pubs <- m.Message }})
	if err := sub.Do(ctx, sub.B().Subscribe().Channel(f.ch).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) send(t *testing.T, conv, cmid, content string) (chatstate.Message, bool) {
	t.Helper()
	sent, err := f.svc.Send(f.ctx, chatstate.Message{ConversationID: conv, SenderID: "alice", ClientMessageID: cmid, Content: content, Type: "text"},
		cache.Publish{Channel: f.ch, Prefix: "", Suffix: ""})
	if err != nil {
		t.Fatalf("send %s: %v", cmid, err)
	}
	return sent.Message, sent.Duplicate
}

// published returns the publications (their messages, without the seq
// header) that arrive before a barrier publication made now.
func (f *fixture) published(t *testing.T) []string {
	t.Helper()
	f.client.Do(f.ctx, f.client.B().Publish().Channel(f.ch).Message("barrier").Build())
	var out []string
	for {
		select {
		case p := <-f.pubs:
			if p == "barrier" {
				return out
			}
			seq, body, ok := strings.Cut(p, "\x00")
			if _, err := strconv.ParseInt(seq, 10, 64); !ok || err != nil {
				t.Fatalf("publication %q has no seq header", p)
			}
			out = append(out, body)
		case <-time.After(5 * time.Second):
			t.Fatal("barrier publication did not arrive")
		}
	}
}

func TestSendPersistsCachesAndPublishesOnce(t *testing.T) {
	client, prefix := redistest.Start(t)
	f := setup(t, client, prefix, cache.Config{})
	m, dup := f.send(t, "c1", "cm1", "hello")
	if dup || m.Seq != 1 || m.ID == "" || m.CreatedAt == 0 {
		t.Fatalf("first send: %+v dup=%v", m, dup)
	}
	stored, err := f.store.MessageByClientID(f.ctx, "alice", "cm1")
	if err != nil || stored != m {
		t.Fatalf("stored %+v %v, want %+v", stored, err, m)
	}
	again, dup := f.send(t, "c1", "cm1", "hello")
	if !dup || again != m {
		t.Fatalf("resend: %+v dup=%v", again, dup)
	}
	if p := f.published(t); len(p) != 1 {
		t.Fatalf("published %d times, want once: %q", len(p), p)
	}
}

// A node that dies after persisting but before caching and fan-out leaves a
// stored message nobody received; the client's resend delivers it once.
func TestResendAfterCrashBetweenPersistAndFanout(t *testing.T) {
	client, prefix := redistest.Start(t)
	f := setup(t, client, prefix, cache.Config{})
	orphan := chatstate.Message{ID: "m-orphan", ConversationID: "c1", SenderID: "alice", ClientMessageID: "cm-lost", Content: "lost?", Type: "text", CreatedAt: 1, Seq: 1}
	if res, err := f.store.InsertMessages(f.ctx, []chatstate.Message{orphan}); err != nil || res[0] != nil {
		t.Fatalf("insert: %v %v", res, err)
	}
	if _, err := f.cache.SetSeqFloor(f.ctx, "c1", 1); err != nil {
		t.Fatal(err)
	}
	got, dup := f.send(t, "c1", "cm-lost", "lost?")
	if !dup || got != orphan {
		t.Fatalf("resend returned %+v dup=%v, want the stored %+v", got, dup, orphan)
	}
	f.send(t, "c1", "cm-lost", "lost?")
	p := f.published(t)
	if len(p) != 1 {
		t.Fatalf("published %d times, want exactly once: %q", len(p), p)
	}
	if n, _ := f.store.MessagesAfter(f.ctx, "c1", 0, 10); len(n) != 1 {
		t.Fatalf("store holds %d messages, want 1", len(n))
	}
	if _, err := f.svc.Send(f.ctx, chatstate.Message{ConversationID: "c2", SenderID: "alice", ClientMessageID: "cm-lost", Content: "x"}, cache.Publish{}); chatstate.ErrorCode(err) != chatstate.ECONFLICT {
		t.Fatalf("reusing a clientMessageId in another conversation: %v", err)
	}
}

func TestSeqSurvivesRedisDataLoss(t *testing.T) {
	srv := redistest.StartServer(t)
	client := srv.Client(t)
	f := setup(t, client, redistest.Prefix(t), cache.Config{})
	for i := 1; i <= 3; i++ {
		f.send(t, "c1", fmt.Sprint("cm", i), "x")
	}
	srv.Restart(t) // the counter and the cache are gone
	deadline := time.Now().Add(10 * time.Second)
	for {
		sent, err := f.svc.Send(f.ctx, chatstate.Message{ConversationID: "c1", SenderID: "alice", ClientMessageID: "cm4", Content: "x"}, cache.Publish{})
		if err == nil {
			if sent.Message.Seq != 4 {
				t.Fatalf("seq after data loss = %d, want 4", sent.Message.Seq)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond) // waiting for the client to reconnect
	}
}

func TestConcurrentSendsGroupCommit(t *testing.T) {
	client, prefix := redistest.Start(t)
	f := setup(t, client, prefix, cache.Config{})
	const n = 200
	var wg sync.WaitGroup
	seqs := make(chan int64, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent, err := f.svc.Send(f.ctx, chatstate.Message{ConversationID: "c1", SenderID: "alice", ClientMessageID: fmt.Sprint("cm", i), Content: "x"}, cache.Publish{})
			if err != nil {
				t.Error(err)
				return
			}
			seqs <- sent.Message.Seq
		}()
	}
	wg.Wait()
	close(seqs)
	seen := map[int64]bool{}
	for s := range seqs {
		if seen[s] {
			t.Fatalf("seq %d twice", s)
		}
		seen[s] = true
	}
	stored, err := f.store.MessagesAfter(f.ctx, "c1", 0, 1000)
	if err != nil || len(stored) != n {
		t.Fatalf("stored %d, %v", len(stored), err)
	}
}

func TestSyncFallsBackToTheStore(t *testing.T) {
	client, prefix := redistest.Start(t)
	f := setup(t, client, prefix, cache.Config{MessageLimit: 3})
	var sent []chatstate.Message
	for i := 1; i <= 8; i++ {
		m, _ := f.send(t, "c1", fmt.Sprint("cm", i), fmt.Sprint("m", i))
		sent = append(sent, m)
	}
	for _, tc := range []struct {
		after int64
		limit int
		want  []chatstate.Message
	}{
		{0, 100, sent},     // older than the cache: store
		{5, 100, sent[5:]}, // the cache holds 6..8
		{2, 2, sent[2:4]},  // paging through the store
		{8, 100, sent[8:]}, // up to date
	} {
		got, err := f.svc.Sync(f.ctx, "c1", tc.after, tc.limit)
		if err != nil || len(got) != len(tc.want) {
			t.Fatalf("Sync(%d, %d) = %d messages, %v; want %d", tc.after, tc.limit, len(got), err, len(tc.want))
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Fatalf("Sync(%d, %d)[%d] = %+v, want %+v", tc.after, tc.limit, i, got[i], tc.want[i])
			}
		}
	}
	before, err := f.svc.Before(f.ctx, "c1", 4, 2)
	if err != nil || len(before) != 2 || before[0] != sent[1] || before[1] != sent[2] {
		t.Fatalf("Before(4, 2) = %+v %v", before, err)
	}
}

// A message the store refuses outright (over its content limit here) skips
// its seq at once: the next send does not wait out the settle timeout.
func TestStoreRefusalSkipsTheSeq(t *testing.T) {
	client, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	store, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "db.sqlite"), sqlitestore.Config{StoreLimits: chatstate.StoreLimits{MaxContentBytes: 10}})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close(context.Background())
	svc := New(cache.New(client, cache.Config{KeyPrefix: prefix, SettleTimeout: time.Hour}), store, Config{})
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go svc.Run(runCtx)
	_, err = svc.Send(ctx, chatstate.Message{ConversationID: "c1", SenderID: "alice", ClientMessageID: "big", Content: "far too long for this store"}, cache.Publish{})
	if chatstate.ErrorCode(err) != chatstate.ETOOLARGE {
		t.Fatalf("oversized: %v", err)
	}
	sendCtx, stop := context.WithTimeout(ctx, 5*time.Second) // far below the hour the seq would otherwise hold
	defer stop()
	sent, err := svc.Send(sendCtx, chatstate.Message{ConversationID: "c1", SenderID: "alice", ClientMessageID: "ok", Content: "short"}, cache.Publish{})
	if err != nil || sent.Message.Seq != 2 {
		t.Fatalf("next send: %+v %v", sent, err)
	}
}

// TestSyncDoesNotTrustACacheWithAGap: after a Sentinel failover the new
// master's cache can lack messages the store has (writes the old master
// took after its replica was promoted): a sync must not skip them.
func TestSyncDoesNotTrustACacheWithAGap(t *testing.T) {
	client, prefix := redistest.Start(t)
	f := setup(t, client, prefix, cache.Config{})
	var sent []chatstate.Message
	for i := 1; i <= 5; i++ {
		m, _ := f.send(t, "c1", fmt.Sprint("cm", i), fmt.Sprint("m", i))
		sent = append(sent, m)
	}
	if err := client.Do(f.ctx, client.B().Zremrangebyscore().Key(keys.New(prefix).Messages("c1")).Min("3").Max("3").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	got, err := f.svc.Sync(f.ctx, "c1", 0, 100)
	if err != nil || len(got) != len(sent) {
		t.Fatalf("Sync(0) = %d messages, %v; want %d", len(got), err, len(sent))
	}
	for i := range got {
		if got[i] != sent[i] {
			t.Fatalf("Sync(0)[%d] = %+v, want %+v", i, got[i], sent[i])
		}
	}
}

// A failover that promotes a lagging replica can leave a conversation's
// counter behind stored, acknowledged messages. After Verify (the gateway
// calls it on resync) a sync checks the store and returns them.
func TestVerifyAfterLostWrites(t *testing.T) {
	client, prefix := redistest.Start(t)
	f := setup(t, client, prefix, cache.Config{})
	var sent []chatstate.Message
	for i := 1; i <= 5; i++ {
		m, _ := f.send(t, "c1", fmt.Sprint("cm", i), fmt.Sprint("m", i))
		sent = append(sent, m)
	}
	// The new master lacks the last two writes of the old one.
	k := keys.New(prefix)
	for _, cmd := range []rueidis.Completed{
		client.B().Set().Key(k.Seq("c1")).Value("3").Build(),
		client.B().Zremrangebyscore().Key(k.Messages("c1")).Min("4").Max("5").Build(),
	} {
		if err := client.Do(f.ctx, cmd).Error(); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := f.svc.Sync(f.ctx, "c1", 3, 100); err != nil || len(got) != 0 {
		t.Fatalf("before Verify the stale counter answers up to date: %v %v", got, err)
	}
	f.svc.Verify(time.Minute)
	got, err := f.svc.Sync(f.ctx, "c1", 3, 100)
	if err != nil || len(got) != 2 || got[0] != sent[3] || got[1] != sent[4] {
		t.Fatalf("after Verify: %+v %v", got, err)
	}
	// A cached run shorter than the page is checked against the store too.
	got, err = f.svc.Sync(f.ctx, "c1", 1, 100)
	if err != nil || len(got) != 4 {
		t.Fatalf("Sync(1) after Verify: %d messages %v", len(got), err)
	}
	// The counter caught up: the next send takes seq 6.
	if m, _ := f.send(t, "c1", "cm6", "m6"); m.Seq != 6 {
		t.Fatalf("next seq %d", m.Seq)
	}
}

// LastSeq never passes a seq that is reserved but not yet stored, so a
// client that syncs from it cannot skip that message.
func TestLastSeqIsTheSettledWatermark(t *testing.T) {
	client, prefix := redistest.Start(t)
	f := setup(t, client, prefix, cache.Config{})
	if n, err := f.svc.LastSeq(f.ctx, "c1"); err != nil || n != 0 {
		t.Fatalf("LastSeq of a new conversation = %d, %v", n, err)
	}
	f.send(t, "c1", "m1", "one")
	if n, err := f.svc.LastSeq(f.ctx, "c1"); err != nil || n != 1 {
		t.Fatalf("LastSeq after one send = %d, %v", n, err)
	}
	// Seq 2 reserved by a send still storing, seq 3 stored and committed
	// behind it.
	r, err := f.cache.Reserve(f.ctx, "c1", "bob", "held")
	if err != nil || r.Seq != 2 {
		t.Fatalf("Reserve = %+v, %v", r, err)
	}
	sendCtx, cancel := context.WithCancel(f.ctx)
	done := make(chan error, 1)
	go func() {
		_, err := f.svc.Send(sendCtx, chatstate.Message{ConversationID: "c1", SenderID: "alice", ClientMessageID: "m3", Content: "three", Type: "text"},
			cache.Publish{Channel: f.ch})
		done <- err
	}()
	defer func() { cancel(); <-done }() // it waits behind seq 2 until cancelled
	deadline := time.Now().Add(10 * time.Second)
	for n, _ := f.store.LastSeq(f.ctx, "c1"); n != 3; n, _ = f.store.LastSeq(f.ctx, "c1") {
		if time.Now().After(deadline) {
			t.Fatal("seq 3 was never stored")
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
	if n, err := f.svc.LastSeq(f.ctx, "c1"); err != nil || n != 1 {
		t.Fatalf("LastSeq with seq 2 pending and 3 stored = %d, %v; want 1", n, err)
	}
}

// SendTo reads the recipients while the message's seq is reserved (so a
// members entry with a lower seq is always seen), publishes to what they
// return, and a refusal there skips the seq at once: the next send does not
// wait for the settle timeout and nothing is stored under it.
func TestSendToReadsRecipientsAfterReserve(t *testing.T) {
	client, prefix := redistest.Start(t)
	f := setup(t, client, prefix, cache.Config{SettleTimeout: 10 * time.Minute})
	f.send(t, "c1", "cm1", "first")
	calls := 0
	sent, err := f.svc.SendTo(f.ctx, chatstate.Message{ConversationID: "c1", SenderID: "alice", ClientMessageID: "cm2", Content: "second"}, Route{To: func(ctx context.Context, _ []string) (cache.Publish, error) {
		calls++
		w, err := f.cache.Settle(ctx, "c1", 0)
		if err != nil || w.Head != 2 || w.Settled != 1 {
			t.Errorf("recipients read with window %+v, %v; want seq 2 pending", w, err)
		}
		return cache.Publish{Channel: f.ch}, nil
	}})
	if err != nil || sent.Message.Seq != 2 || calls != 1 {
		t.Fatalf("SendTo = %+v, %v after %d calls", sent, err, calls)
	}
	if p := f.published(t); len(p) != 2 {
		t.Fatalf("published %q, want both messages", p)
	}
	_, err = f.svc.SendTo(f.ctx, chatstate.Message{ConversationID: "c1", SenderID: "alice", ClientMessageID: "cm3", Content: "refused"}, Route{To: func(context.Context, []string) (cache.Publish, error) {
		return cache.Publish{}, chatstate.Errorf(chatstate.EFORBIDDEN, "not a member of this conversation")
	}})
	if chatstate.ErrorCode(err) != chatstate.EFORBIDDEN {
		t.Fatalf("refused SendTo: %v", err)
	}
	// Seq 3 was skipped at once: seq 4 settles without the 10 minute timeout.
	ctx, cancel := context.WithTimeout(f.ctx, 30*time.Second)
	defer cancel()
	next, err := f.svc.Send(ctx, chatstate.Message{ConversationID: "c1", SenderID: "alice", ClientMessageID: "cm4", Content: "fourth", Type: "text"},
		cache.Publish{Channel: f.ch})
	if err != nil || next.Message.Seq != 4 {
		t.Fatalf("send after a refusal = %+v, %v", next, err)
	}
	msgs, err := f.store.MessagesAfter(f.ctx, "c1", 0, 10)
	if err != nil || len(msgs) != 3 || msgs[2].Content != "fourth" {
		t.Fatalf("stored %+v, %v; want seqs 1, 2, 4", msgs, err)
	}
	if p := f.published(t); len(p) != 1 {
		t.Fatalf("published %q after the refusal, want only the fourth", p)
	}
}
