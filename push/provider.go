package push

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/chatstate/chatstate"
)

// maxRetryAfter caps what a provider may ask us to wait, so a bad header
// cannot park a job for days.
const maxRetryAfter = time.Hour

// retry is a retryable failure: code unavailable, with the wait the
// provider asked for (zero when it did not say).
func retry(after time.Duration, format string, args ...any) error {
	e := chatstate.Errorf(chatstate.EUNAVAILABLE, format, args...)
	e.RetryAfter = min(max(after, 0), maxRetryAfter)
	return e
}

// gone wraps chatstate.ErrTokenGone with what the provider said.
func gone(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), chatstate.ErrTokenGone)
}

// permanent is a failure that retrying will not fix: the caller
// dead-letters the push.
func permanent(format string, args ...any) error {
	return chatstate.Errorf(chatstate.EINVALID, format, args...)
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.ParseInt(h, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, int64(maxRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// collapseID fits a collapse key into a vendor's limit: kept when it is at
// most maxLen bytes of URL-safe base64's alphabet (Web Push Topic's rule,
// safe in every header), else replaced by a hash of it, so one
// conversation keeps one id whatever its name.
func collapseID(key string, maxLen int) string {
	if key == "" {
		return ""
	}
	ok := len(key) <= maxLen
	for i := 0; ok && i < len(key); i++ {
		c := key[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
	}
	if ok {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	id := base64.RawURLEncoding.EncodeToString(sum[:])
	return id[:min(len(id), maxLen)]
}
