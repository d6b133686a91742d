package cleanup

import "context"

// sessionSweep removes expired sessions of every user (SCAN over the
// sessions keys, one script per user).
type sessionSweep struct{ store SessionStore }

func (j sessionSweep) round(ctx context.Context) (JobResult, error) {
	var r JobResult
	var cursor uint64
	for {
		users, next, err := j.store.SessionUsers(ctx, cursor, 500)
		if err != nil {
			return r, err
		}
		for _, u := range users {
			n, err := j.store.SweepSessions(ctx, u)
			if err != nil {
				return r, err
			}
			r.Removed += n
		}
		if cursor = next; cursor == 0 {
			return r, nil
		}
	}
}
