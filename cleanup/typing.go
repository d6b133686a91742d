package cleanup

import "context"

// typingSweep drops expired entries from typing sets that other typers
// keep alive (a set with no live entry expires by itself).
type typingSweep struct{ state PresenceState }

func (j typingSweep) round(ctx context.Context) (JobResult, error) {
	n, err := j.state.SweepTyping(ctx)
	return JobResult{Removed: n.Expired}, err
}
