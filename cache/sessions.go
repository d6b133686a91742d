package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/chatstate/chatstate"
	"github.com/redis/rueidis"
)

// Sessions of a user live in one hash, field = deviceId, value =
// "<expiresAt>|<createdAt>|<lastActivity>|<JSON of userId, deviceId, data>".
// The timestamps lead so scripts can enforce per-field expiry with a cheap
// string match instead of decoding JSON.

type sessionBody struct {
	UserID   string            `json:"userId"`
	DeviceID string            `json:"deviceId"`
	Data     map[string]string `json:"data,omitempty"`
}

func parseSession(v string) (chatstate.Session, error) {
	parts := strings.SplitN(v, "|", 4)
	if len(parts) != 4 {
		return chatstate.Session{}, fmt.Errorf("cache: malformed session value")
	}
	var nums [3]int64
	for i := range nums {
		n, err := strconv.ParseInt(parts[i], 10, 64)
		if err != nil {
			return chatstate.Session{}, fmt.Errorf("cache: malformed session value: %w", err)
		}
		nums[i] = n
	}
	var b sessionBody
	if err := json.Unmarshal([]byte(parts[3]), &b); err != nil {
		return chatstate.Session{}, fmt.Errorf("cache: malformed session value: %w", err)
	}
	return chatstate.Session{
		UserID: b.UserID, DeviceID: b.DeviceID, Data: b.Data,
		ExpiresAt: nums[0], CreatedAt: nums[1], LastActivity: nums[2],
	}, nil
}

func validateUserDevice(userID, deviceID string) error {
	if err := chatstate.ValidateID("userId", userID); err != nil {
		return err
	}
	return chatstate.ValidateID("deviceId", deviceID)
}

// CreateSession stores (or replaces) the session of s.UserID's device
// s.DeviceID. CreatedAt, LastActivity and ExpiresAt are set from Redis time;
// the ones in s are ignored. Beyond MaxSessions the least recently active
// session of the user is evicted.
func (c *Cache) CreateSession(ctx context.Context, s chatstate.Session) (chatstate.Session, error) {
	if err := validateUserDevice(s.UserID, s.DeviceID); err != nil {
		return chatstate.Session{}, err
	}
	body, err := json.Marshal(sessionBody{UserID: s.UserID, DeviceID: s.DeviceID, Data: s.Data})
	if err != nil {
		return chatstate.Session{}, err
	}
	if len(body) > c.cfg.MaxValueBytes {
		return chatstate.Session{}, chatstate.Errorf(chatstate.ETOOLARGE, "session data is %d bytes, the limit is %d", len(body), c.cfg.MaxValueBytes)
	}
	v, err := scriptSessionCreate.Exec(ctx, c.client, []string{c.keys.Sessions(s.UserID)},
		[]string{s.DeviceID, string(body), ms(c.cfg.SessionTTL), itoa(int64(c.cfg.MaxSessions))}).ToString()
	if err != nil {
		return chatstate.Session{}, mapErr(err)
	}
	return parseSession(v)
}

// UpdateSessionActivity sets LastActivity to now and extends the session by
// SessionTTL. A missing or expired session is not_found.
func (c *Cache) UpdateSessionActivity(ctx context.Context, userID, deviceID string) (chatstate.Session, error) {
	if err := validateUserDevice(userID, deviceID); err != nil {
		return chatstate.Session{}, err
	}
	v, err := scriptSessionTouch.Exec(ctx, c.client, []string{c.keys.Sessions(userID)},
		[]string{deviceID, ms(c.cfg.SessionTTL)}).ToString()
	if err != nil {
		return chatstate.Session{}, mapErr(err)
	}
	return parseSession(v)
}

// Session returns one live session; a missing or expired one is not_found.
func (c *Cache) Session(ctx context.Context, userID, deviceID string) (chatstate.Session, error) {
	if err := validateUserDevice(userID, deviceID); err != nil {
		return chatstate.Session{}, err
	}
	list, err := c.readSessions(ctx, userID, deviceID)
	if err != nil {
		return chatstate.Session{}, err
	}
	if len(list) == 0 {
		return chatstate.Session{}, chatstate.Errorf(chatstate.ENOTFOUND, "no such session")
	}
	return list[0], nil
}

// Sessions returns the live sessions of a user ordered by deviceId; expired
// ones are never listed (they are dropped by the same script).
func (c *Cache) Sessions(ctx context.Context, userID string) ([]chatstate.Session, error) {
	if err := chatstate.ValidateID("userId", userID); err != nil {
		return nil, err
	}
	return c.readSessions(ctx, userID, "")
}

func (c *Cache) readSessions(ctx context.Context, userID, deviceID string) ([]chatstate.Session, error) {
	vals, err := scriptSessionRead.Exec(ctx, c.client, []string{c.keys.Sessions(userID)}, []string{deviceID}).AsStrSlice()
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([]chatstate.Session, 0, len(vals))
	for _, v := range vals {
		s, err := parseSession(v)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DeviceID < out[j].DeviceID })
	return out, nil
}

// DeleteSession removes a session. Deleting a missing session is not an
// error, so logout can be retried.
func (c *Cache) DeleteSession(ctx context.Context, userID, deviceID string) error {
	if err := validateUserDevice(userID, deviceID); err != nil {
		return err
	}
	return mapErr(c.client.Do(ctx, c.client.B().Hdel().Key(c.keys.Sessions(userID)).Field(deviceID).Build()).Error())
}

// SweepSessions removes the expired sessions of a user and returns how many
// it removed. The Cleanup service calls it for each user of SessionUsers.
func (c *Cache) SweepSessions(ctx context.Context, userID string) (int, error) {
	if err := chatstate.ValidateID("userId", userID); err != nil {
		return 0, err
	}
	n, err := scriptSessionSweep.Exec(ctx, c.client, []string{c.keys.Sessions(userID)}, nil).AsInt64()
	return int(n), mapErr(err)
}

// SessionUsers is one SCAN step over the users that have a sessions key:
// start with cursor 0 and stop when the returned cursor is 0. count is the
// SCAN COUNT hint (zero means 100, at most 1000). A user may be returned
// more than once. On a cluster client the iteration visits every master in
// turn (the cursor encodes which one, see clusterSessionUsers).
func (c *Cache) SessionUsers(ctx context.Context, cursor uint64, count int) ([]string, uint64, error) {
	if count <= 0 {
		count = 100
	}
	if count > 1000 {
		count = 1000
	}
	if c.client.Mode() == rueidis.ClientModeCluster {
		return c.clusterSessionUsers(ctx, cursor, count)
	}
	e, err := c.client.Do(ctx, c.client.B().Scan().Cursor(cursor).Match(c.keys.SessionsPattern()).
		Count(int64(count)).Type("hash").Build()).AsScanEntry()
	if err != nil {
		return nil, 0, mapErr(err)
	}
	return c.sessionUsers(e.Elements), e.Cursor, nil
}

func (c *Cache) sessionUsers(keys []string) []string {
	users := make([]string, 0, len(keys))
	for _, k := range keys {
		if u, ok := c.keys.SessionsUser(k); ok {
			users = append(users, u)
		}
	}
	return users
}
