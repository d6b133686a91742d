package presence

import (
	"context"
	"strconv"
	"time"

	"github.com/chatstate/chatstate"
)

var _ chatstate.SocketRegistry = (*State)(nil)

// RegisterSocket writes the socket's record (docs/redis-keys.md,
// `socket:{s:<socketId>}`) with its TTL in one round trip.
func (s *State) RegisterSocket(ctx context.Context, rec chatstate.SocketRecord, ttl time.Duration) error {
	if err := validate("socketId", rec.SocketID, "userId", rec.UserID, "deviceId", rec.DeviceID); err != nil {
		return err
	}
	key := s.k.Socket(rec.SocketID)
	for _, res := range s.c.DoMulti(ctx,
		s.c.B().Hset().Key(key).FieldValue().FieldValue("userId", rec.UserID).FieldValue("deviceId", rec.DeviceID).
			FieldValue("node", rec.Node).FieldValue("connectedAt", strconv.FormatInt(rec.ConnectedAt, 10)).
			FieldValue("ip", rec.IP).FieldValue("userAgent", rec.UserAgent).Build(),
		s.c.B().Pexpire().Key(key).Milliseconds(ttl.Milliseconds()).Build(),
	) {
		if err := res.Error(); err != nil {
			return err
		}
	}
	return nil
}

// RemoveSocket deletes the socket's record.
func (s *State) RemoveSocket(ctx context.Context, socketID string) error {
	if err := validate("socketId", socketID); err != nil {
		return err
	}
	return s.c.Do(ctx, s.c.B().Del().Key(s.k.Socket(socketID)).Build()).Error()
}
