package cache

import (
	"context"
	"fmt"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/luascript"
	"github.com/redis/rueidis"
)

// Bounds on CheckRateLimit's arguments: the window's sorted set holds up to
// limit members and lives for window.
const (
	MaxRateLimit       = 100000
	MaxRateLimitWindow = 31 * 24 * time.Hour
)

// CheckRateLimit counts one attempt of action by userID against an exact
// sliding window of limit hits per window, in one script. A denied attempt is
// not counted, so a client hammering while blocked does not extend its ban.
func (c *Cache) CheckRateLimit(ctx context.Context, userID, action string, limit int, window time.Duration) (chatstate.RateLimitResult, error) {
	call, err := c.rateLimitCall(userID, Limit{Action: action, Max: limit, Window: window})
	if err != nil {
		return chatstate.RateLimitResult{}, err
	}
	return parseRateLimit(call.Script.Exec(ctx, c.client, call.Keys, call.Args))
}

// Limit is a rate limit: at most Max hits of Action per Window.
type Limit struct {
	Action string
	Max    int
	Window time.Duration
}

func (c *Cache) rateLimitCall(userID string, l Limit) (luascript.Call, error) {
	if err := chatstate.ValidateID("userId", userID); err != nil {
		return luascript.Call{}, err
	}
	if err := chatstate.ValidateID("action", l.Action); err != nil {
		return luascript.Call{}, err
	}
	if l.Max <= 0 || l.Max > MaxRateLimit {
		return luascript.Call{}, chatstate.Errorf(chatstate.EINVALID, "rate limit must be 1..%d, got %d", MaxRateLimit, l.Max)
	}
	if l.Window < time.Microsecond || l.Window > MaxRateLimitWindow {
		return luascript.Call{}, chatstate.Errorf(chatstate.EINVALID, "rate limit window must be 1µs..%s, got %s", MaxRateLimitWindow, l.Window)
	}
	return luascript.Call{Script: scriptRateLimitCheck, Keys: []string{c.keys.RateLimit(userID, l.Action)},
		Args: []string{itoa(int64(l.Max)), itoa(l.Window.Microseconds()), chatstate.NewID()[:16]}}, nil
}

func parseRateLimit(res rueidis.RedisResult) (chatstate.RateLimitResult, error) {
	r, err := res.AsIntSlice()
	if err != nil {
		return chatstate.RateLimitResult{}, mapErr(err)
	}
	if len(r) != 4 {
		return chatstate.RateLimitResult{}, fmt.Errorf("cache: ratelimit_check: unexpected reply of %d elements", len(r))
	}
	return chatstate.RateLimitResult{
		Allowed:    r[0] == 1,
		Remaining:  int(r[1]),
		ResetAt:    time.UnixMicro(r[2]),
		RetryAfter: time.Duration(r[3]) * time.Microsecond,
	}, nil
}
