package presence

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/luascript"
	"github.com/redis/rueidis"
)

// OnlineUsers returns one page of publicly online users. cursor is 0 for the
// first page and the returned Cursor for the next; Cursor 0 means done.
// limit 0 means 100, above 1000 is capped at 1000.
//
// Two round trips: a ZSCAN of the online:users index, then one pipelined
// read per candidate, so only users online at that moment (not invisible,
// no expired or dead-node devices) are returned. A page can thus hold fewer
// ids than limit, even none with a non-zero Cursor. ZSCAN's COUNT is a hint:
// a small index (listpack encoded, <= 128 members) comes back whole in one
// page. Users online during the whole iteration are returned at least once
// (exactly once unless the index is rehashed meanwhile).
func (s *State) OnlineUsers(ctx context.Context, cursor uint64, limit int) (chatstate.OnlineUsersPage, error) {
	switch {
	case limit < 0:
		return chatstate.OnlineUsersPage{}, chatstate.Errorf(chatstate.EINVALID, "limit must not be negative")
	case limit == 0:
		limit = defaultPage
	case limit > maxPage:
		limit = maxPage
	}
	entry, err := s.c.Do(ctx, s.c.B().Zscan().Key(s.k.OnlineUsers()).Cursor(cursor).Count(int64(limit)).Build()).AsScanEntry()
	if err != nil {
		return chatstate.OnlineUsersPage{}, luascript.Err(err)
	}
	page := chatstate.OnlineUsersPage{Cursor: entry.Cursor, UserIDs: []string{}}
	ids := make([]string, 0, len(entry.Elements)/2)
	seen := make(map[string]bool, len(entry.Elements)/2)
	for i := 0; i+1 < len(entry.Elements); i += 2 {
		// Members are user ids written by this package; skip anything else
		// rather than building a key from it.
		if id := entry.Elements[i]; !seen[id] && chatstate.ValidateID("userId", id) == nil {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	views, err := s.views(ctx, ids)
	if err != nil {
		return chatstate.OnlineUsersPage{}, err
	}
	for _, p := range views {
		if p.Online {
			page.UserIDs = append(page.UserIDs, p.UserID)
		}
	}
	return page, nil
}

// Sweep prunes expired devices and devices of dead node instances and keeps
// online:users free of stale members. It returns the changes of users who
// went offline without SetUserOffline (their node crashed or their devices
// expired) so the caller can tell their friends; each such transition is
// reported once, by whichever Sweep (on any node) prunes it first.
//
// It first validates every index member whose stale-at score has passed,
// then, only while some node instance is dead, the whole index (a ZSCAN
// pass), since a crashed node's users have scores up to DeviceTTL ahead.
// Run it from one node at a time (the cleanup job holds a lock); running it
// concurrently is safe, only wasteful.
func (s *State) Sweep(ctx context.Context) ([]chatstate.PresenceChange, error) {
	var changes []chatstate.PresenceChange
	// Bounded: each round removes or re-scores (into the future) every due
	// member it saw, so rounds only repeat while more are due.
	for round := 0; round < 1000; round++ {
		flat, err := s.exec(ctx, luascript.Call{Script: scriptDue, Keys: []string{s.k.OnlineUsers()},
			Args: []string{strconv.Itoa(sweepBatch)}}).AsStrSlice()
		if err != nil {
			return changes, luascript.Err(err)
		}
		ch, err := s.sweepUsers(ctx, flat)
		changes = append(changes, ch...)
		if err != nil {
			return changes, err
		}
		if len(flat) < 2*sweepBatch {
			break
		}
	}
	if len(s.Dead()) == 0 {
		return changes, nil
	}
	var cursor uint64
	for {
		entry, err := s.c.Do(ctx, s.c.B().Zscan().Key(s.k.OnlineUsers()).Cursor(cursor).Count(sweepBatch).Build()).AsScanEntry()
		if err != nil {
			return changes, luascript.Err(err)
		}
		ch, err := s.sweepUsers(ctx, entry.Elements)
		changes = append(changes, ch...)
		if err != nil {
			return changes, err
		}
		if cursor = entry.Cursor; cursor == 0 {
			return changes, nil
		}
	}
}

// sweepUsers runs presence_sweep for flat {member, score, ...} index
// entries, removes the offline ones from the index (unless re-added) and
// re-scores the online ones.
func (s *State) sweepUsers(ctx context.Context, flat []string) ([]chatstate.PresenceChange, error) {
	var ids []string
	observed := make(map[string]float64, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		id := flat[i]
		sc, err := strconv.ParseFloat(flat[i+1], 64)
		if err != nil {
			return nil, fmt.Errorf("presence: bad index score %q: %w", flat[i+1], err)
		}
		if chatstate.ValidateID("userId", id) != nil {
			// Not written by this package; it can never be valid.
			observed[id] = sc
			continue
		}
		if _, dup := observed[id]; !dup {
			ids = append(ids, id)
		}
		observed[id] = sc
	}
	if len(ids) == 0 {
		return nil, s.unindex(ctx, observed)
	}
	calls := make([]luascript.Call, len(ids))
	for i, id := range ids {
		calls[i] = s.userCall(scriptSweep, id, s.lastSeenTTL)
	}
	var changes []chatstate.PresenceChange
	var rescore []rueidis.Completed
	for i, r := range s.pipeline(ctx, calls) {
		ch, score, err := parseChange(ids[i], r)
		if err != nil {
			return changes, err
		}
		if ch.Changed {
			changes = append(changes, ch)
		}
		if score > 0 {
			delete(observed, ids[i])
			rescore = append(rescore, s.c.B().Zadd().Key(s.k.OnlineUsers()).Gt().ScoreMember().ScoreMember(score, ids[i]).Build())
		}
	}
	if len(rescore) > 0 {
		for _, r := range s.c.DoMulti(ctx, rescore...) {
			if err := r.Error(); err != nil {
				return changes, luascript.Err(err)
			}
		}
	}
	return changes, s.unindex(ctx, observed)
}

// OnlineCount is the number of users in the online index whose newest
// device is not yet stale: connected users, invisible ones included. Users
// of a node that died stay counted until the presence sweep removes them
// (within the sweep interval of NodeTimeout). One ZCOUNT.
func (s *State) OnlineCount(ctx context.Context) (int, error) {
	// The index scores come from the writers' clocks (see SetUserOnline),
	// so the local clock is the right "now" for them.
	n, err := s.c.Do(ctx, s.c.B().Zcount().Key(s.k.OnlineUsers()).Min("("+strconv.FormatInt(time.Now().UnixMilli(), 10)).Max("+inf").Build()).AsInt64()
	return int(n), luascript.Err(err)
}
