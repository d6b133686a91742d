package mongostore

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/chatstate/chatstate"
)

type readDoc struct {
	ID             string `bson:"_id"` // "<conversation>/<user>": '/' is outside ValidateID's charset
	ConversationID string `bson:"conversationId"`
	UserID         string `bson:"userId"`
	Seq            int64  `bson:"seq"`
}

// SetReadPosition raises the user's read position with $max (never lowers
// it) and returns the stored one.
func (s *Store) SetReadPosition(ctx context.Context, conversationID, userID string, seq int64) (int64, error) {
	if err := chatstate.ValidateID("conversation id", conversationID); err != nil {
		return 0, err
	}
	if err := chatstate.ValidateID("user id", userID); err != nil {
		return 0, err
	}
	if seq < 0 || seq >= chatstate.MaxSeq {
		return 0, chatstate.Errorf(chatstate.EINVALID, "seq %d out of range", seq)
	}
	filter := bson.D{{Key: "_id", Value: conversationID + "/" + userID}}
	update := bson.D{
		{Key: "$max", Value: bson.D{{Key: "seq", Value: seq}}},
		{Key: "$set", Value: bson.D{{Key: "conversationId", Value: conversationID}, {Key: "userId", Value: userID}}},
	}
	opts := options.FindOneAndUpdate().SetUpsert(true).SetReturnDocument(options.After)
	var d readDoc
	err := s.reads.FindOneAndUpdate(ctx, filter, update, opts).Decode(&d)
	if mongo.IsDuplicateKeyError(err) {
		// Two first writes raced on the upsert: the document exists now.
		err = s.reads.FindOneAndUpdate(ctx, filter, update, opts).Decode(&d)
	}
	if err != nil {
		return 0, dbErr("set read position", err)
	}
	return d.Seq, nil
}

// ReadPositions returns the conversation's read positions by user.
func (s *Store) ReadPositions(ctx context.Context, conversationID string) (map[string]int64, error) {
	if err := chatstate.ValidateID("conversation id", conversationID); err != nil {
		return nil, err
	}
	cur, err := s.reads.Find(ctx, bson.D{{Key: "conversationId", Value: conversationID}})
	if err != nil {
		return nil, dbErr("read positions", err)
	}
	var docs []readDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, dbErr("read positions", err)
	}
	out := make(map[string]int64, len(docs))
	for _, d := range docs {
		out[d.UserID] = d.Seq
	}
	return out, nil
}

// ConversationActivity reads the user's conversations (members index), then
// each one's last message that bumps activity (the (conversationId, seq)
// index, newest first): one query per conversation, which only the Redis
// list's repair pays.
func (s *Store) ConversationActivity(ctx context.Context, userID string) ([]chatstate.ConversationActivity, error) {
	if err := chatstate.ValidateID("user id", userID); err != nil {
		return nil, err
	}
	cur, err := s.convs.Find(ctx, bson.D{{Key: "members", Value: userID}}, options.Find().
		SetProjection(bson.D{{Key: "_id", Value: 1}, {Key: "createdAt", Value: 1}}).
		SetSort(bson.D{{Key: "_id", Value: 1}}).
		SetLimit(int64(s.cfg.MaxConversationsOf)))
	if err != nil {
		return nil, dbErr("conversation activity", err)
	}
	var convs []conversationDoc
	if err := cur.All(ctx, &convs); err != nil {
		return nil, dbErr("conversation activity", err)
	}
	var skip bson.A
	for _, t := range chatstate.NotCounted {
		if !chatstate.BumpsActivity(t) {
			skip = append(skip, t)
		}
	}
	// One indexed FindOne per conversation, eight at a time: only the
	// Redis list's repair pays this.
	out := make([]chatstate.ConversationActivity, len(convs))
	errs := make([]error, len(convs))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, c := range convs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			out[i] = chatstate.ConversationActivity{ID: c.ID, LastActivity: c.CreatedAt}
			var last struct {
				CreatedAt int64 `bson:"createdAt"`
			}
			err := s.messages.FindOne(ctx, bson.D{{Key: "conversationId", Value: c.ID}, {Key: "type", Value: bson.D{{Key: "$nin", Value: skip}}}},
				options.FindOne().SetSort(bson.D{{Key: "seq", Value: -1}}).SetProjection(bson.D{{Key: "createdAt", Value: 1}})).Decode(&last)
			switch {
			case err == nil:
				out[i].LastActivity = last.CreatedAt
			case !errors.Is(err, mongo.ErrNoDocuments):
				errs[i] = dbErr("conversation activity", err)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(x, y chatstate.ConversationActivity) int {
		if x.LastActivity != y.LastActivity {
			if x.LastActivity > y.LastActivity {
				return -1
			}
			return 1
		}
		return strings.Compare(x.ID, y.ID)
	})
	return out, nil
}
