package cleanup

import (
	"context"
	"log/slog"

	"github.com/chatstate/chatstate"
)

// presenceSweep announces the users who went offline without a
// disconnect: their node died, or their devices expired.
type presenceSweep struct {
	state    PresenceState
	announce func(ctx context.Context, p chatstate.Presence) error
	log      *slog.Logger
}

func (j presenceSweep) round(ctx context.Context) (JobResult, error) {
	changes, err := j.state.Sweep(ctx)
	for _, ch := range changes {
		if j.announce != nil {
			if err := j.announce(ctx, ch.After); err != nil {
				j.log.Warn("presence change not announced", "user", ch.After.UserID, "err", err)
			}
		}
	}
	return JobResult{Removed: len(changes)}, err
}
