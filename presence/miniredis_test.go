package presence

import (
	"testing"

	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/redis/rueidis"
)

// TestStateMiniredis runs the contract on the embedded Redis of the
// zero-setup mode.
func TestStateMiniredis(t *testing.T) {
	testState(t, func(t *testing.T) (rueidis.Client, string) { return redistest.StartEmbedded(t) })
}
