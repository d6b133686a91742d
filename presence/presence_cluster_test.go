package presence

import (
	"testing"

	"github.com/chatstate/chatstate/internal/redistest"
	"github.com/redis/rueidis"
)

// clusterRedis gives a cluster client of the package's 3-master Redis
// Cluster: every script must keep its keys in one slot, or Redis answers
// CROSSSLOT (and rueidis refuses to build the command).
func clusterRedis(t *testing.T) (rueidis.Client, string) { return redistest.StartClusterClient(t) }

func TestStateCluster(t *testing.T) { testState(t, clusterRedis) }
