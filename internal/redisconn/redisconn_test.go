package redisconn

import (
	"context"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestFromEnv(t *testing.T) {
	c, err := FromEnv(env(nil))
	if err != nil || c.Configured() {
		t.Fatalf("empty env: %+v %v", c, err)
	}
	c, _ = FromEnv(env(map[string]string{"REDIS_HOST": "redis.internal", "REDIS_PASSWORD": "pw", "CHATSTATE_KEY_PREFIX": "app:"}))
	opt, err := c.Option()
	if err != nil || !c.Configured() || opt.InitAddress[0] != "redis.internal:6379" || opt.Password != "pw" || c.KeyPrefix != "app:" {
		t.Fatalf("host: %+v %v", opt, err)
	}
	c, _ = FromEnv(env(map[string]string{"REDIS_CLUSTER_ADDRS": "a:1, b:2 ,"}))
	if opt, _ := c.Option(); len(opt.InitAddress) != 2 || opt.InitAddress[1] != "b:2" || opt.ForceSingleClient {
		t.Fatalf("cluster: %+v", opt.InitAddress)
	}
	c, _ = FromEnv(env(map[string]string{"REDIS_SENTINEL_ADDRS": "s:26379", "REDIS_SENTINEL_MASTER": "mymaster"}))
	if opt, _ := c.Option(); opt.Sentinel.MasterSet != "mymaster" {
		t.Fatalf("sentinel: %+v", opt.Sentinel)
	}
	c, _ = FromEnv(env(map[string]string{"REDIS_URL": "redis://:secret@h:7000/2", "REDIS_TLS": "true"}))
	if opt, err := c.Option(); err != nil || opt.InitAddress[0] != "h:7000" || opt.SelectDB != 2 || opt.Password != "secret" || opt.TLSConfig == nil {
		t.Fatalf("url: %+v %v", opt, err)
	}
	for _, bad := range []map[string]string{
		{"REDIS_TLS": "maybe"},
		{"REDIS_SENTINEL_ADDRS": "s:1"},
		{"CHATSTATE_KEY_PREFIX": "{app}:"},
	} {
		if _, err := FromEnv(env(bad)); err == nil {
			t.Errorf("%v: want error", bad)
		}
	}
	c, _ = FromEnv(env(map[string]string{"REDIS_URL": "http://nope"}))
	if _, err := c.Option(); err == nil {
		t.Error("bad URL: want error")
	}
}

func TestOpenUnreachableSaysWhere(t *testing.T) {
	c, _ := FromEnv(env(map[string]string{"REDIS_HOST": "127.0.0.1", "REDIS_PORT": "1"}))
	_, err := Open(context.Background(), c, time.Second)
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
