package cache

import (
	"testing"

	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/redis/rueidis"
)

// TestCacheMiniredis runs the contract on the embedded Redis of the
// zero-setup mode.
func TestCacheMiniredis(t *testing.T) {
	testCache(t, func(t *testing.T) (rueidis.Client, string) { return redistest.StartEmbedded(t) })
}
