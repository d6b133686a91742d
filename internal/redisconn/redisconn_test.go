package redisconn

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestOption(t *testing.T) {
	if (Config{}).Configured() || (Config{Password: "pw", TLS: true, KeyPrefix: "app:"}).Configured() {
		t.Fatal("a config without an address must not count as configured")
	}
	c := Config{Host: "redis.internal", Password: "pw", KeyPrefix: "app:"}
	opt, err := c.Option()
	if err != nil || !c.Configured() || opt.InitAddress[0] != "redis.internal:6379" || opt.Password != "pw" || !opt.ForceSingleClient {
		t.Fatalf("host: %+v %v", opt, err)
	}
	if opt, _ := (Config{ClusterAddrs: []string{"a:1", "b:2"}}).Option(); len(opt.InitAddress) != 2 || opt.InitAddress[1] != "b:2" || opt.ForceSingleClient {
		t.Fatalf("cluster: %+v", opt.InitAddress)
	}
	if opt, _ := (Config{SentinelAddrs: []string{"s:26379"}, SentinelMaster: "mymaster"}).Option(); opt.Sentinel.MasterSet != "mymaster" {
		t.Fatalf("sentinel: %+v", opt.Sentinel)
	}
	c = Config{URL: "redis://:secret@h:7000/2", TLS: true}
	if opt, err := c.Option(); err != nil || opt.InitAddress[0] != "h:7000" || opt.SelectDB != 2 || opt.Password != "secret" || opt.TLSConfig == nil {
		t.Fatalf("url: %+v %v", opt, err)
	}
	if _, err := (Config{URL: "http://nope"}).Option(); err == nil {
		t.Error("bad URL: want error")
	}
}

func TestOpenUnreachableSaysWhere(t *testing.T) {
	_, err := Open(context.Background(), Config{Host: "127.0.0.1", Port: "1"}, time.Second)
	if err == nil || !strings.Contains(err.Error(), "redis unreachable at 127.0.0.1:1") {
		t.Fatalf("got %v", err)
	}
}

func TestEmbedded(t *testing.T) {
	e, err := StartEmbedded()
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx := context.Background()
	if err := e.Client.Do(ctx, e.Client.B().Set().Key("k").Value("v").Px(50*time.Millisecond).Build()).Error(); err != nil {
		t.Fatal(err)
	}
	// TTLs run on the wall clock (no FastForward needed).
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, _ := e.Client.Do(ctx, e.Client.B().Exists().Key("k").Build()).AsInt64()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("key did not expire in real time")
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
}
