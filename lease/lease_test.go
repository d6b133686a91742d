package lease

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chatstate/chatstate/internal/keys"
	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/redis/rueidis"
)

func TestMain(m *testing.M) { os.Exit(redistest.Run(m)) }

func get(t *testing.T, c rueidis.Client, key string) string {
	t.Helper()
	v, err := c.Do(context.Background(), c.B().Get().Key(key).Build()).ToString()
	if rueidis.IsRedisNil(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// One holder at a time; a release leaves the round marker, which a manual
// run takes and deletes; a held lease is never taken, not even manually.
func TestHoldReleaseMarker(t *testing.T) {
	client, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	a := New(client, Config{KeyPrefix: prefix, Owner: "a", TTL: 10 * time.Second})
	b := New(client, Config{KeyPrefix: prefix, Owner: "b", TTL: 10 * time.Second})
	key := keys.New(prefix).Lock("job")

	ran, err := a.Do(ctx, "job", time.Minute, func(ctx context.Context) error {
		if v := get(t, client, key); !strings.HasPrefix(v, "a/") {
			t.Errorf("lock value while a runs: %q", v)
		}
		for _, try := range []func(context.Context, string, func(context.Context) error) (bool, error){
			func(ctx context.Context, n string, f func(context.Context) error) (bool, error) {
				return b.Do(ctx, n, time.Minute, f)
			},
			b.DoNow,
		} {
			if ran, err := try(ctx, "job", func(context.Context) error { return nil }); ran || err != nil {
				t.Errorf("b ran %v (%v) while a held the lease", ran, err)
			}
		}
		return nil
	})
	if !ran || err != nil {
		t.Fatalf("a: ran %v, %v", ran, err)
	}
	if v := get(t, client, key); v != "~done" {
		t.Fatalf("after the round: %q, want the round marker", v)
	}
	if ran, _ := b.Do(ctx, "job", time.Minute, func(context.Context) error { return nil }); ran {
		t.Fatal("b ran the round a already ran")
	}
	if ran, err := b.DoNow(ctx, "job", func(context.Context) error { return nil }); !ran || err != nil {
		t.Fatalf("manual run over the marker: %v %v", ran, err)
	}
	if v := get(t, client, key); v != "" {
		t.Fatalf("after a manual run: %q, want no key", v)
	}
	if ran, err := b.Do(ctx, "other", 0, func(context.Context) error { return nil }); !ran || err != nil || get(t, client, keys.New(prefix).Lock("other")) != "" {
		t.Fatalf("a round without a marker: ran %v %v, key left", ran, err)
	}
}

// A job whose lease is taken from it is cancelled with ErrLost, and its
// release leaves the new holder's lock alone.
func TestLostLease(t *testing.T) {
	client, prefix := redistest.Start(t)
	ctx := redistest.Ctx(t)
	a := New(client, Config{KeyPrefix: prefix, Owner: "a", TTL: 300 * time.Millisecond})
	key := keys.New(prefix).Lock("job")
	ran, err := a.Do(ctx, "job", 0, func(ctx context.Context) error {
		if err := client.Do(ctx, client.B().Set().Key(key).Value("thief").Build()).Error(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(30 * time.Second):
			return errors.New("job not cancelled")
		}
	})
	if !ran || !errors.Is(err, ErrLost) {
		t.Fatalf("ran %v, err %v; want the job cancelled", ran, err)
	}
	if v := get(t, client, key); v != "thief" {
		t.Fatalf("the release touched the new holder's lock: %q", v)
	}
}
