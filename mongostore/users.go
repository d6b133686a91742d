package mongostore

import (
	"context"
	"errors"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/chatstate/chatstate"
)

// userDoc is one user. Device tokens are a sub-document keyed by device so
// that adding, replacing and removing one is a single atomic $set/$unset on
// its own path (FerretDB 1.24 has no positional array updates).
type userDoc struct {
	ID           string              `bson:"_id"`
	Friends      []string            `bson:"friends,omitempty"`
	LastSeen     int64               `bson:"lastSeen,omitempty"`
	DeviceTokens map[string]tokenDoc `bson:"deviceTokens,omitempty"`
}

type tokenDoc struct {
	DeviceID  string `bson:"deviceId"`
	Platform  string `bson:"platform"`
	Token     string `bson:"token"`
	UpdatedAt int64  `bson:"updatedAt"`
}

// tokenKey makes a device id usable as a field name: '.' would be read as a
// path separator by updates. '~' is outside ValidateID's charset, so the
// mapping is one to one.
func tokenKey(deviceID string) string { return strings.ReplaceAll(deviceID, ".", "~") }

func (s *Store) user(ctx context.Context, userID string, fields ...string) (userDoc, error) {
	proj := bson.D{}
	for _, f := range fields {
		proj = append(proj, bson.E{Key: f, Value: 1})
	}
	var d userDoc
	err := s.users.FindOne(ctx, bson.D{{Key: "_id", Value: userID}}, options.FindOne().SetProjection(proj)).Decode(&d)
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return userDoc{}, dbErr("find user", err)
	}
	return d, nil
}

func (s *Store) updateUser(ctx context.Context, op, userID string, update bson.D) error {
	_, err := s.users.UpdateOne(ctx, bson.D{{Key: "_id", Value: userID}}, update, options.UpdateOne().SetUpsert(true))
	return dbErr(op, err)
}

// Friends returns the user's friend list, empty for an unknown user.
func (s *Store) Friends(ctx context.Context, userID string) ([]string, error) {
	if err := chatstate.ValidateID("user id", userID); err != nil {
		return nil, err
	}
	d, err := s.user(ctx, userID, "friends")
	if err != nil {
		return nil, err
	}
	if d.Friends == nil {
		return []string{}, nil
	}
	return d.Friends, nil
}

// SetFriends replaces the list (duplicates dropped, order kept; nil clears).
func (s *Store) SetFriends(ctx context.Context, userID string, friends []string) error {
	if err := chatstate.ValidateID("user id", userID); err != nil {
		return err
	}
	friends, err := chatstate.ValidateIDs("friends", friends, s.cfg.MaxFriends)
	if err != nil {
		return err
	}
	return s.updateUser(ctx, "set friends", userID, bson.D{{Key: "$set", Value: bson.D{{Key: "friends", Value: friends}}}})
}

// SetLastSeen stores at (epoch ms) as given; callers pass server time.
func (s *Store) SetLastSeen(ctx context.Context, userID string, at int64) error {
	if err := chatstate.ValidateID("user id", userID); err != nil {
		return err
	}
	if at < 0 {
		return chatstate.Errorf(chatstate.EINVALID, "last seen %d: must not be negative", at)
	}
	return s.updateUser(ctx, "set last seen", userID, bson.D{{Key: "$set", Value: bson.D{{Key: "lastSeen", Value: at}}}})
}

// LastSeen returns 0 for a user never seen.
func (s *Store) LastSeen(ctx context.Context, userID string) (int64, error) {
	if err := chatstate.ValidateID("user id", userID); err != nil {
		return 0, err
	}
	d, err := s.user(ctx, userID, "lastSeen")
	return d.LastSeen, err
}

// SetDeviceToken adds or replaces the token of t.DeviceID (UpdatedAt 0 is
// set to now). A new device beyond MaxDeviceTokens evicts the least
// recently updated token (ties: the smallest device id) in the same update
// (chatstate.StoreLimits). The count check reads first, so
// two devices added at the very same moment may briefly exceed the cap by
// one; the next SetDeviceToken trims it again.
func (s *Store) SetDeviceToken(ctx context.Context, userID string, t chatstate.DeviceToken) error {
	if err := chatstate.ValidateID("user id", userID); err != nil {
		return err
	}
	if err := t.Validate(s.cfg.MaxTokenBytes); err != nil {
		return err
	}
	if t.UpdatedAt == 0 {
		t.UpdatedAt = s.cfg.Now().UnixMilli()
	}
	d, err := s.user(ctx, userID, "deviceTokens")
	if err != nil {
		return err
	}
	key := tokenKey(t.DeviceID)
	update := bson.D{{Key: "$set", Value: bson.D{{Key: "deviceTokens." + key, Value: tokenDoc(t)}}}}
	delete(d.DeviceTokens, key)
	if extra := len(d.DeviceTokens) + 1 - s.cfg.MaxDeviceTokens; extra > 0 {
		unset := bson.D{}
		for range extra {
			oldest := ""
			for k, v := range d.DeviceTokens {
				if o, ok := d.DeviceTokens[oldest]; !ok || v.UpdatedAt < o.UpdatedAt || v.UpdatedAt == o.UpdatedAt && v.DeviceID < o.DeviceID {
					oldest = k
				}
			}
			delete(d.DeviceTokens, oldest)
			unset = append(unset, bson.E{Key: "deviceTokens." + oldest, Value: ""})
		}
		update = append(update, bson.E{Key: "$unset", Value: unset})
	}
	return s.updateUser(ctx, "set device token", userID, update)
}

// DeviceTokens returns the user's tokens in no particular order.
func (s *Store) DeviceTokens(ctx context.Context, userID string) ([]chatstate.DeviceToken, error) {
	if err := chatstate.ValidateID("user id", userID); err != nil {
		return nil, err
	}
	d, err := s.user(ctx, userID, "deviceTokens")
	if err != nil {
		return nil, err
	}
	out := make([]chatstate.DeviceToken, 0, len(d.DeviceTokens))
	for _, t := range d.DeviceTokens {
		out = append(out, chatstate.DeviceToken(t))
	}
	return out, nil
}

// RemoveDeviceToken of an unknown user or device is a no-op.
func (s *Store) RemoveDeviceToken(ctx context.Context, userID, deviceID string) error {
	if err := chatstate.ValidateID("user id", userID); err != nil {
		return err
	}
	if err := chatstate.ValidateID("device id", deviceID); err != nil {
		return err
	}
	_, err := s.users.UpdateOne(ctx, bson.D{{Key: "_id", Value: userID}},
		bson.D{{Key: "$unset", Value: bson.D{{Key: "deviceTokens." + tokenKey(deviceID), Value: ""}}}})
	return dbErr("remove device token", err)
}

// RemoveDeviceTokenIf removes the device's token only while it is token.
func (s *Store) RemoveDeviceTokenIf(ctx context.Context, userID, deviceID, token string) error {
	if err := chatstate.ValidateID("user id", userID); err != nil {
		return err
	}
	if err := chatstate.ValidateID("device id", deviceID); err != nil {
		return err
	}
	field := "deviceTokens." + tokenKey(deviceID)
	_, err := s.users.UpdateOne(ctx, bson.D{{Key: "_id", Value: userID}, {Key: field + ".token", Value: token}},
		bson.D{{Key: "$unset", Value: bson.D{{Key: field, Value: ""}}}})
	return dbErr("remove device token", err)
}
