package cache_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/cache"
	"github.com/chatstate/chatstate/internal/keys"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/chatstate/chatstate/presence"
	"github.com/redis/rueidis"
)

// Redis memory per active conversation and per idle connection, from
// MEMORY USAGE of the keys the real scripts write (and INFO used_memory
// deltas for what no key holds: Pub/Sub subscriptions). Sizes, not times:
//
//	go test -run '^$' -bench 'Memory' -benchtime 1x ./cache/

// memoryUsage is MEMORY USAGE key SAMPLES 0 (exact), 0 for a missing key.
func memoryUsage(ctx context.Context, b *testing.B, c rueidis.Client, key string) int64 {
	b.Helper()
	n, err := c.Do(ctx, c.B().MemoryUsage().Key(key).Samples(0).Build()).AsInt64()
	if rueidis.IsRedisNil(err) {
		return 0
	}
	if err != nil {
		b.Fatalf("MEMORY USAGE %s: %v", key, err)
	}
	return n
}

// BenchmarkConversationMemory fills one conversation of 10 members per
// iteration with 1,000 durable messages (Reserve + Commit, UUID-sized
// clientMessageIds) of the given content size, every member reading up to
// the end, and reports the bytes of each of its keys and their total, and
// the Redis commands (those inside the scripts included) and EVALSHA
// microseconds per message (INFO commandstats; the shared test server, so
// run it alone).
func BenchmarkConversationMemory(b *testing.B) {
	for _, size := range []int{40, 1 << 10, 16 << 10} {
		b.Run(fmt.Sprintf("content=%dB", size), func(b *testing.B) { benchConversationMemory(b, 1000, 10, size) })
	}
}

func benchConversationMemory(b *testing.B, msgs, members, size int) {
	client, prefix := redistest.Start(b)
	ctx := redistest.Ctx(b)
	c := cache.New(client, cache.Config{KeyPrefix: prefix})
	k := keys.New(prefix)
	content := strings.Repeat("m", size)
	users := make([]string, members)
	for i := range users {
		users[i] = fmt.Sprintf("user%04d", i)
	}
	parts := map[string]int64{}
	for it := 0; it < b.N; it++ {
		conv := fmt.Sprintf("conv%06d", it)
		must(b, client.Do(ctx, client.B().Sadd().Key(k.Members(conv)).Member(users...).Build()).Error()) // as directory caches it
		if _, err := c.SetSeqFloor(ctx, conv, 0); err != nil {
			b.Fatal(err)
		}
		calls0, usec0 := commandStats(ctx, b, client)
		for i := 0; i < msgs; i++ {
			sender := users[i%members]
			cmid := fmt.Sprintf("%08x-4b1e-4c3a-9d2f-%012x", i, it)
			r, err := c.Reserve(ctx, conv, sender, cmid)
			if err != nil || r.Duplicate || r.Missing {
				b.Fatalf("reserve: %+v %v", r, err)
			}
			m := chatstate.Message{ID: chatstate.NewID(), ConversationID: conv, SenderID: sender, Content: content, Type: "text",
				ClientMessageID: cmid, Seq: r.Seq, CreatedAt: time.Now().UnixMilli()}
			if _, err := c.Commit(ctx, m, cache.Publish{}); err != nil {
				b.Fatal(err)
			}
		}
		calls1, usec1 := commandStats(ctx, b, client)
		parts["~calls"] += calls1 - calls0 - 1 // the INFO itself
		parts["~usec"] += usec1 - usec0
		must(b, c.FillReads(ctx, conv, map[string]int64{}))
		for _, u := range users {
			if _, err := c.MarkRead(ctx, conv, u, int64(msgs), time.Second); err != nil {
				b.Fatal(err)
			}
		}
		for name, key := range map[string]string{
			"messages": k.Messages(conv), "dedupe": k.Dedupe(conv), "seq": k.Seq(conv), "restored": k.Restored(conv),
			"pending": k.Pending(conv), "ready": k.Ready(conv), "summary": k.Summary(conv), "counted": k.Counted(conv),
			"reads": k.Reads(conv), "members": k.Members(conv),
		} {
			parts[name] += memoryUsage(ctx, b, client, key)
		}
	}
	b.ReportMetric(float64(parts["~calls"])/float64(b.N*msgs), "redis-cmds/msg")
	b.ReportMetric(float64(parts["~usec"])/float64(b.N*msgs), "redis-us/msg")
	delete(parts, "~calls")
	delete(parts, "~usec")
	var total int64
	for name, n := range parts {
		total += n
		if n > 0 {
			b.ReportMetric(float64(n)/float64(b.N), name+"-B/conv")
		}
	}
	b.ReportMetric(float64(total)/float64(b.N), "B/conv")
	b.ReportMetric(float64(total-parts["messages"])/float64(b.N), "beyond-cache-B/conv")
}

// BenchmarkConnectionMemory connects n users with one device each the way
// the gateway registers a socket (presence.SetUserOnline, the session,
// the socket hash with the gateway's fields and TTL, and one node's
// SUBSCRIBE of the user channel) on a private redis-server, and reports
// bytes per connection: MEMORY USAGE of each per-user key, the
// online:users share, and the used_memory delta of the subscriptions.
func BenchmarkConnectionMemory(b *testing.B) {
	const n = 2000
	srv := redistest.StartServer(b)
	client := srv.Client(b)
	ctx := redistest.Ctx(b)
	prefix := redistest.Prefix(b)
	k := keys.New(prefix)
	st := presence.New(client, presence.Config{KeyPrefix: prefix, NodeID: "node-a"})
	must(b, st.Heartbeat(ctx))
	c := cache.New(client, cache.Config{KeyPrefix: prefix})
	sub, release := client.Dedicate()
	defer release()
	// One subscription first, so the subscriber's own structures are not
	// counted per channel.
	must(b, sub.Do(ctx, sub.B().Subscribe().Channel(prefix+"warm").Build()).Error())
	parts := map[string]int64{}
	for it := 0; it < b.N; it++ {
		users := make([]string, n)
		for i := range users {
			users[i] = fmt.Sprintf("user%02d-%06d", it, i)
		}
		for i, u := range users {
			sock := fmt.Sprintf("s%02d%018x", it, i) // 20 chars, as engine.io ids
			if _, err := st.SetUserOnline(ctx, u, "device-1", sock); err != nil {
				b.Fatal(err)
			}
			if _, err := c.CreateSession(ctx, chatstate.Session{UserID: u, DeviceID: "device-1"}); err != nil {
				b.Fatal(err)
			}
			key := k.Socket(sock)
			for _, res := range client.DoMulti(ctx,
				client.B().Hset().Key(key).FieldValue().FieldValue("userId", u).FieldValue("deviceId", "device-1").
					FieldValue("node", "node-a").FieldValue("connectedAt", strconv.FormatInt(time.Now().UnixMilli(), 10)).
					FieldValue("ip", "127.0.0.1").FieldValue("userAgent", "node-XMLHttpRequest").Build(),
				client.B().Pexpire().Key(key).Milliseconds((24 * time.Hour).Milliseconds()).Build()) {
				must(b, res.Error())
			}
			parts["presence"] += memoryUsage(ctx, b, client, k.Presence(u))
			parts["session"] += memoryUsage(ctx, b, client, k.Sessions(u))
			parts["socket"] += memoryUsage(ctx, b, client, key)
		}
		parts["online"] = memoryUsage(ctx, b, client, k.OnlineUsers()) // the whole index: divided by all users below
		before := usedMemory(ctx, b, client)
		for i := 0; i < n; i += 500 {
			chs := make([]string, 0, 500)
			for _, u := range users[i:min(i+500, n)] {
				chs = append(chs, k.UserChannel(u))
			}
			must(b, sub.Do(ctx, sub.B().Subscribe().Channel(chs...).Build()).Error())
		}
		parts["subscription"] += usedMemory(ctx, b, client) - before
	}
	conns := float64(n * b.N)
	var total float64
	for name, v := range parts {
		per := float64(v) / conns
		total += per
		b.ReportMetric(per, name+"-B/conn")
	}
	b.ReportMetric(total, "B/conn")
}

// commandStats sums calls and usec over INFO commandstats: commands run
// inside scripts count, as does EVALSHA itself.
func commandStats(ctx context.Context, b *testing.B, c rueidis.Client) (calls, usec int64) {
	b.Helper()
	info, err := c.Do(ctx, c.B().Info().Section("commandstats").Build()).ToString()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		_, stats, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(line, "cmdstat_") {
			continue
		}
		for _, f := range strings.Split(stats, ",") {
			k, v, _ := strings.Cut(f, "=")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "calls":
				calls += n
			case "usec":
				if strings.HasPrefix(line, "cmdstat_evalsha:") {
					usec += n
				}
			}
		}
	}
	return calls, usec
}

func usedMemory(ctx context.Context, b *testing.B, c rueidis.Client) int64 {
	b.Helper()
	info, err := c.Do(ctx, c.B().Info().Section("memory").Build()).ToString()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return n
		}
	}
	b.Fatal("INFO memory has no used_memory")
	return 0
}

func must(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}
