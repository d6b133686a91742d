package cache

import (
	"context"
	"fmt"
	"time"

	"github.com/chatstate/chatstate"
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
	if err := chatstate.ValidateID("userId", userID); err != nil {
		return chatstate.RateLimitResult{}, err
	}
	if err := chatstate.ValidateID("action", action); err != nil {
		return chatstate.RateLimitResult{}, err
	}
	if limit <= 0 || limit > MaxRateLimit {
		return chatstate.RateLimitResult{}, chatstate.Errorf(chatstate.EINVALID, "rate limit must be 1..%d, got %d", MaxRateLimit, limit)
	}
	if window < time.Microsecond || window > MaxRateLimitWindow {
		return chatstate.RateLimitResult{}, chatstate.Errorf(chatstate.EINVALID, "rate limit window must be 1µs..%s, got %s", MaxRateLimitWindow, window)
	}
	r, err := scriptRateLimitCheck.Exec(ctx, c.client, []string{c.keys.RateLimit(userID, action)},
		[]string{itoa(int64(limit)), itoa(window.Microseconds()), chatstate.NewID()[:16]}).AsIntSlice()
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
