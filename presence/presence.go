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

func validate(kv ...string) error {
	for i := 0; i < len(kv); i += 2 {
		if err := chatstate.ValidateID(kv[i], kv[i+1]); err != nil {
			return err
		}
	}
	return nil
}

// userCall builds a presence_* script call with the common arguments.
func (s *State) userCall(sc *luascript.Script, userID string, args ...string) luascript.Call {
	a := make([]string, 0, 2+len(args))
	a = append(a, s.deviceTTL, *s.dead.Load())
	a = append(a, args...)
	return luascript.Call{Script: sc, Keys: []string{s.k.Presence(userID)}, Args: a}
}

// indexAdd registers userID in online:users until the device goes stale.
// The score comes from this node's clock because it is pipelined with the
// script and cannot wait for its reply; GT keeps the latest deadline, and
// the index is only a hint that OnlineUsers and Sweep validate.
func (s *State) indexAdd(userID string) rueidis.Completed {
	score := float64(time.Now().Add(s.cfg.DeviceTTL).UnixMilli())
	return s.c.B().Zadd().Key(s.k.OnlineUsers()).Gt().ScoreMember().ScoreMember(score, userID).Build()
}

// SetUserOnline registers deviceID of userID as connected on this instance
// through socketID. One round trip: the script and the index ZADD are
// pipelined.
func (s *State) SetUserOnline(ctx context.Context, userID, deviceID, socketID string) (chatstate.PresenceChange, error) {
	if err := validate("userId", userID, "deviceId", deviceID, "socketId", socketID); err != nil {
		return chatstate.PresenceChange{}, err
	}
	res := s.pipeline(ctx, []luascript.Call{s.userCall(scriptOnline, userID, s.lastSeenTTL, deviceID, s.instance, socketID, s.maxDevices)},
		s.indexAdd(userID))
	ch, _, err := parseChange(userID, res[0])
	if err != nil {
		return ch, err
	}
	return ch, luascript.Err(res[1].Error())
}

// SetUserOffline removes deviceID of userID. Removing an unknown device is
// a no-op that reports no change.
func (s *State) SetUserOffline(ctx context.Context, userID, deviceID string) (chatstate.PresenceChange, error) {
	return s.offline(ctx, userID, deviceID, "")
}

// SetSocketOffline is SetUserOffline for a socket's disconnect handler: the
// device is removed only while it is still registered with socketID, so a
// late disconnect of an old socket does not remove the device's newer
// connection (mobile clients reconnect before the old socket times out).
func (s *State) SetSocketOffline(ctx context.Context, userID, deviceID, socketID string) (chatstate.PresenceChange, error) {
	if err := validate("socketId", socketID); err != nil {
		return chatstate.PresenceChange{}, err
	}
	return s.offline(ctx, userID, deviceID, socketID)
}

func (s *State) offline(ctx context.Context, userID, deviceID, socketID string) (chatstate.PresenceChange, error) {
	if err := validate("userId", userID, "deviceId", deviceID); err != nil {
		return chatstate.PresenceChange{}, err
	}
	ch, score, err := parseChange(userID, s.exec(ctx, s.userCall(scriptOffline, userID, s.lastSeenTTL, deviceID, socketID)))
	if err != nil {
		return ch, err
	}
	if score == 0 {
		// Fully offline: drop the index entry unless a later SetUserOnline
		// has raised its score past any score set before this moment. A
		// second round trip, but only on the last device's disconnect.
		cutoff := float64(time.Now().Add(s.cfg.DeviceTTL).UnixMilli())
		if err := s.unindex(ctx, map[string]float64{userID: cutoff}); err != nil {
			return ch, err
		}
	}
	return ch, nil
}

// TouchDevice refreshes the activity (and so the TTL) of a live device. It
// returns a not_found error when the device is not online any more (expired
// or its node died): the gateway should call SetUserOnline again.
func (s *State) TouchDevice(ctx context.Context, userID, deviceID string) error {
	if err := validate("userId", userID, "deviceId", deviceID); err != nil {
		return err
	}
	res := s.pipeline(ctx, []luascript.Call{s.userCall(scriptTouch, userID, s.lastSeenTTL, deviceID)}, s.indexAdd(userID))
	if err := res[0].Error(); err != nil {
		return luascript.Err(err)
	}
	return luascript.Err(res[1].Error())
}

// UpdateUserStatus sets the status the user chose. It persists across
// reconnects (for LastSeenTTL after the last write).
func (s *State) UpdateUserStatus(ctx context.Context, userID string, status chatstate.Status) (chatstate.PresenceChange, error) {
	if err := validate("userId", userID); err != nil {
		return chatstate.PresenceChange{}, err
	}
	st, err := chatstate.ParseStatus(string(status))
	if err != nil {
		return chatstate.PresenceChange{}, err
	}
	ch, _, err := parseChange(userID, s.exec(ctx, s.userCall(scriptStatus, userID, s.lastSeenTTL, string(st))))
	return ch, err
}

// IsUserOnline reports whether userID is publicly online (an invisible user
// is not).
func (s *State) IsUserOnline(ctx context.Context, userID string) (bool, error) {
	if err := validate("userId", userID); err != nil {
		return false, err
	}
	v, err := s.get(ctx, []string{userID})
	if err != nil {
		return false, err
	}
	return v[0].p.Online, nil
}

// IsUserConnected reports whether userID has a live device, whatever its
// status: an invisible user is connected. Pushes go only to users who are not.
func (s *State) IsUserConnected(ctx context.Context, userID string) (bool, error) {
	if err := validate("userId", userID); err != nil {
		return false, err
	}
	v, err := s.get(ctx, []string{userID})
	if err != nil {
		return false, err
	}
	return v[0].live > 0, nil
}

// Connected reports, for each distinct id, whether the user has a live
// device whatever the status (invisible users included), in one pipelined
// round trip: who must not be pushed for a message.
func (s *State) Connected(ctx context.Context, userIDs []string) (map[string]bool, error) {
	ids, err := chatstate.ValidateIDs("userIds", userIDs, s.cfg.MaxBulk)
	if err != nil {
		return nil, err
	}
	views, err := s.get(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(ids))
	for i, v := range views {
		out[ids[i]] = v.live > 0
	}
	return out, nil
}

// Presence returns the public presence of up to MaxBulk distinct users in
// one pipelined round trip. Duplicate ids are looked up once.
func (s *State) Presence(ctx context.Context, userIDs ...string) (map[string]chatstate.Presence, error) {
	seen := make(map[string]bool, len(userIDs))
	ids := make([]string, 0, len(userIDs))
	for _, id := range userIDs {
		if err := validate("userId", id); err != nil {
			return nil, err
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if len(ids) > s.cfg.MaxBulk {
		return nil, chatstate.Errorf(chatstate.EINVALID, "at most %d user ids per presence query, got %d", s.cfg.MaxBulk, len(ids))
	}
	views, err := s.views(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]chatstate.Presence, len(ids))
	for _, p := range views {
		out[p.UserID] = p
	}
	return out, nil
}

// views reads the public presence of distinct, valid ids in one pipelined
// round trip, in the order of ids.
func (s *State) views(ctx context.Context, ids []string) ([]chatstate.Presence, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	views, err := s.get(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]chatstate.Presence, len(ids))
	for i, v := range views {
		out[i] = v.p
	}
	return out, nil
}

// view is one user's presence as presence_get reads it.
type view struct {
	p    chatstate.Presence
	live int64 // live devices, whatever the status
}

// get runs presence_get over valid ids in one round trip and returns
// their views in the order of ids.
func (s *State) get(ctx context.Context, ids []string) ([]view, error) {
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.k.Presence(id)
	}
	out := make([]view, 0, len(ids))
	for _, r := range s.pipeline(ctx, luascript.PerKey(s.c, scriptGet, keys, []string{s.deviceTTL, *s.dead.Load()})) {
		replies, err := r.ToArray()
		if err != nil {
			return nil, luascript.Err(err)
		}
		for _, one := range replies {
			if len(out) == len(ids) {
				return nil, fmt.Errorf("presence: get replied for more than %d users", len(ids))
			}
			p, live, err := parseView(ids[len(out)], one)
			if err != nil {
				return nil, err
			}
			out = append(out, view{p, live})
		}
	}
	if len(out) != len(ids) {
		return nil, fmt.Errorf("presence: get replied for %d of %d users", len(out), len(ids))
	}
	return out, nil
}

func viewOf(userID string, v []rueidis.RedisMessage) (chatstate.Presence, error) {
	if len(v) != 4 {
		return chatstate.Presence{}, fmt.Errorf("presence: view of %d fields, want 4", len(v))
	}
	online, err1 := v[0].AsInt64()
	status, err2 := v[1].ToString()
	seen, err3 := v[2].AsInt64()
	devices, err4 := v[3].AsInt64()
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			return chatstate.Presence{}, fmt.Errorf("presence: bad view: %w", err)
		}
	}
	return chatstate.Presence{UserID: userID, Online: online == 1, Status: chatstate.Status(status),
		LastSeen: seen, Devices: int(devices)}, nil
}

// parseView decodes presence_get's reply: the public view and the count of
// live devices.
func parseView(userID string, r rueidis.RedisMessage) (chatstate.Presence, int64, error) {
	v, err := r.ToArray()
	if err != nil {
		return chatstate.Presence{}, 0, err
	}
	if len(v) != 5 {
		return chatstate.Presence{}, 0, fmt.Errorf("presence: get reply of %d fields, want 5", len(v))
	}
	live, err := v[4].AsInt64()
	if err != nil {
		return chatstate.Presence{}, 0, fmt.Errorf("presence: bad live count: %w", err)
	}
	p, err := viewOf(userID, v[:4])
	return p, live, err
}

// parseChange decodes reply() of presence_lib.lua: the change and the index
// score (0 when no device is live).
func parseChange(userID string, r rueidis.RedisResult) (chatstate.PresenceChange, float64, error) {
	v, err := r.ToArray()
	if err != nil {
		return chatstate.PresenceChange{}, 0, luascript.Err(err)
	}
	if len(v) != 9 && len(v) != 10 {
		return chatstate.PresenceChange{}, 0, fmt.Errorf("presence: change of %d fields, want 9 or 10", len(v))
	}
	before, err := viewOf(userID, v[0:4])
	if err != nil {
		return chatstate.PresenceChange{}, 0, err
	}
	after, err := viewOf(userID, v[4:8])
	if err != nil {
		return chatstate.PresenceChange{}, 0, err
	}
	score, err := v[8].AsInt64()
	if err != nil {
		return chatstate.PresenceChange{}, 0, fmt.Errorf("presence: bad score: %w", err)
	}
	ch := chatstate.PresenceChange{Before: before, After: after, Changed: before.Online != after.Online || before.Status != after.Status}
	if len(v) == 10 { // presence_offline's kept flag
		kept, _ := v[9].AsInt64()
		ch.DeviceKept = kept == 1
	}
	return ch, float64(score), nil
}

// unindex removes users from online:users unless their score rose above
// the given maximum meanwhile (a concurrent write re-added them).
func (s *State) unindex(ctx context.Context, maxScore map[string]float64) error {
	if len(maxScore) == 0 {
		return nil
	}
	args := make([]string, 0, 2*len(maxScore))
	for id, sc := range maxScore {
		args = append(args, id, strconv.FormatFloat(sc, 'f', -1, 64))
	}
	return luascript.Err(s.exec(ctx, luascript.Call{Script: scriptRemove, Keys: []string{s.k.OnlineUsers()}, Args: args}).Error())
}
