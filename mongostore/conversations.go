package mongostore

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/chatstate/chatstate"
)

type conversationDoc struct {
	ID        string   `bson:"_id"`
	Members   []string `bson:"members"`
	CreatedAt int64    `bson:"createdAt"`
	// Version counts membership changes (absent before the first): the
	// compare-and-set of UpdateMembers.
	Version int64 `bson:"v,omitempty"`
}

// CreateConversation stores c with its members deduplicated (first
// occurrence's order kept) and CreatedAt 0 set to now. An existing id is
// ECONFLICT; the _id index makes that check atomic.
func (s *Store) CreateConversation(ctx context.Context, c chatstate.Conversation) (chatstate.Conversation, error) {
	if err := c.Normalize(s.cfg.MaxMembers, s.cfg.Now()); err != nil {
		return chatstate.Conversation{}, err
	}
	_, err := s.convs.InsertOne(ctx, conversationDoc{ID: c.ID, Members: c.Members, CreatedAt: c.CreatedAt})
	if mongo.IsDuplicateKeyError(err) {
		return chatstate.Conversation{}, chatstate.Errorf(chatstate.ECONFLICT, "conversation %s exists", c.ID)
	} else if err != nil {
		return chatstate.Conversation{}, dbErr("create conversation", err)
	}
	return c, nil
}

// Conversation returns ENOTFOUND for an unknown id.
func (s *Store) Conversation(ctx context.Context, id string) (chatstate.Conversation, error) {
	if err := chatstate.ValidateID("conversation id", id); err != nil {
		return chatstate.Conversation{}, err
	}
	var d conversationDoc
	err := s.convs.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return chatstate.Conversation{}, notFound(id)
	} else if err != nil {
		return chatstate.Conversation{}, dbErr("find conversation", err)
	}
	if d.Members == nil {
		d.Members = []string{}
	}
	return chatstate.Conversation{ID: d.ID, Members: d.Members, CreatedAt: d.CreatedAt}, nil
}

func notFound(id string) error {
	return chatstate.Errorf(chatstate.ENOTFOUND, "no conversation %s", id)
}

// IsMember matches the member inside the query, so a large member list is
// never shipped to the client. Only a miss pays a second lookup, to tell a
// non-member from an unknown conversation.
func (s *Store) IsMember(ctx context.Context, conversationID, userID string) (bool, error) {
	if err := chatstate.ValidateID("conversation id", conversationID); err != nil {
		return false, err
	}
	if err := chatstate.ValidateID("user id", userID); err != nil {
		return false, err
	}
	idOnly := options.FindOne().SetProjection(bson.D{{Key: "_id", Value: 1}})
	err := s.convs.FindOne(ctx, bson.D{{Key: "_id", Value: conversationID}, {Key: "members", Value: userID}}, idOnly).Err()
	if err == nil {
		return true, nil
	} else if !errors.Is(err, mongo.ErrNoDocuments) {
		return false, dbErr("is member", err)
	}
	err = s.convs.FindOne(ctx, bson.D{{Key: "_id", Value: conversationID}}, idOnly).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, notFound(conversationID)
	} else if err != nil {
		return false, dbErr("is member", err)
	}
	return false, nil
}

// ConversationsOf lists the ids of the user's conversations (the members
// multikey index), sorted, at most StoreLimits.MaxConversationsOf.
func (s *Store) ConversationsOf(ctx context.Context, userID string) ([]string, error) {
	if err := chatstate.ValidateID("user id", userID); err != nil {
		return nil, err
	}
	cur, err := s.convs.Find(ctx, bson.D{{Key: "members", Value: userID}}, options.Find().
		SetProjection(bson.D{{Key: "_id", Value: 1}}).
		SetSort(bson.D{{Key: "_id", Value: 1}}).
		SetLimit(int64(s.cfg.MaxConversationsOf)))
	if err != nil {
		return nil, dbErr("conversations of", err)
	}
	defer cur.Close(ctx)
	ids := []string{}
	for cur.Next(ctx) {
		var d struct {
			ID string `bson:"_id"`
		}
		if err := cur.Decode(&d); err != nil {
			return nil, dbErr("decode conversation", err)
		}
		ids = append(ids, d.ID)
	}
	if err := cur.Err(); err != nil {
		return nil, dbErr("conversations of", err)
	}
	return ids, nil
}

// UpdateMembers changes the members with a compare-and-set on the
// conversation's version, retried when another change won the race, so
// concurrent changes on different nodes never lose one another's ids. The
// changes of this process are also serialised: FerretDB (the tests'
// MongoDB-wire server) does not match and update atomically.
func (s *Store) UpdateMembers(ctx context.Context, id string, change chatstate.MembersChange) (chatstate.Conversation, chatstate.MembersChange, error) {
	if err := chatstate.ValidateID("conversation id", id); err != nil {
		return chatstate.Conversation{}, chatstate.MembersChange{}, err
	}
	s.membersMu.Lock()
	defer s.membersMu.Unlock()
	for attempt := 0; ; attempt++ {
		var d conversationDoc
		err := s.convs.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d)
		if errors.Is(err, mongo.ErrNoDocuments) {
			return chatstate.Conversation{}, chatstate.MembersChange{}, notFound(id)
		} else if err != nil {
			return chatstate.Conversation{}, chatstate.MembersChange{}, dbErr("find conversation", err)
		}
		c := chatstate.Conversation{ID: d.ID, Members: d.Members, CreatedAt: d.CreatedAt}
		eff, err := c.ApplyMembers(change, s.cfg.MaxMembers)
		if err != nil || len(eff.Added)+len(eff.Removed) == 0 {
			return c, eff, err
		}
		filter := bson.D{{Key: "_id", Value: id}, {Key: "v", Value: d.Version}}
		if d.Version == 0 {
			filter[1].Value = bson.D{{Key: "$exists", Value: false}}
		}
		res, err := s.convs.UpdateOne(ctx, filter,
			bson.D{{Key: "$set", Value: bson.D{{Key: "members", Value: c.Members}, {Key: "v", Value: d.Version + 1}}}})
		if err != nil {
			return chatstate.Conversation{}, chatstate.MembersChange{}, dbErr("update members", err)
		}
		if res.MatchedCount == 1 {
			return c, eff, nil
		}
		if attempt == 20 {
			return chatstate.Conversation{}, chatstate.MembersChange{}, &chatstate.Error{Code: chatstate.EUNAVAILABLE,
				Message: "the members are being changed concurrently, retry", RetryAfter: 100 * time.Millisecond}
		}
	}
}
