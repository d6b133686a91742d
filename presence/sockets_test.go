package presence

import (
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/keys"
)

func TestSocketRecords(t *testing.T) {
	client, prefix := realRedis(t)
	ctx := ctxT(t)
	s := New(client, Config{KeyPrefix: prefix})
	rec := chatstate.SocketRecord{SocketID: "s1", UserID: "alice", DeviceID: "phone", Node: "n1", ConnectedAt: 1700000000123,
		IP: "10.0.0.1", UserAgent: "ua/1"}
	if err := s.RegisterSocket(ctx, rec, time.Hour); err != nil {
		t.Fatal(err)
	}
	key := keys.New(prefix).Socket("s1")
	got, err := client.Do(ctx, client.B().Hgetall().Key(key).Build()).AsStrMap()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"userId": "alice", "deviceId": "phone", "node": "n1", "connectedAt": "1700000000123",
		"ip": "10.0.0.1", "userAgent": "ua/1"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (record %v)", k, got[k], v, got)
		}
	}
	ttl, err := client.Do(ctx, client.B().Pttl().Key(key).Build()).AsInt64()
	if err != nil || ttl <= 0 || ttl > time.Hour.Milliseconds() {
		t.Fatalf("PTTL = %d, %v; want within an hour", ttl, err)
	}
	if err := s.RemoveSocket(ctx, "s1"); err != nil {
		t.Fatal(err)
	}
	if n, _ := client.Do(ctx, client.B().Exists().Key(key).Build()).AsInt64(); n != 0 {
		t.Fatal("socket record left after RemoveSocket")
	}
	bad := rec
	bad.SocketID = "bad id"
	if err := s.RegisterSocket(ctx, bad, time.Hour); chatstate.ErrorCode(err) != chatstate.EINVALID {
		t.Fatalf("bad socket id: %v, want invalid", err)
	}
}
