package mongostore

import (
	"context"
	"encoding/hex"
	"errors"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/chatstate/chatstate"
)

// noClientIDPrefix marks the stand-in clientMessageId of a message sent
// without one. MongoDB's unique index treats a missing field as null, so
// two such messages of one sender would collide, and partial indexes (the
// usual fix) are not supported by FerretDB. '~' is outside ValidateID's
// charset, so a stand-in never equals a real client id.
const noClientIDPrefix = "~"

// messageDoc is a message as stored; field names are chatstate.Message's
// JSON names.
type messageDoc struct {
	OID             bson.ObjectID `bson:"_id"`
	ID              string        `bson:"id"`
	ConversationID  string        `bson:"conversationId"`
	SenderID        string        `bson:"senderId"`
	Content         string        `bson:"content"`
	Type            string        `bson:"type"`
	CreatedAt       int64         `bson:"createdAt"`
	Seq             int64         `bson:"seq"`
	ClientMessageID string        `bson:"clientMessageId"`

	// Timeline entries and the state they give an original (see
	// chatstate.MessageStore.InsertMessages). EditSeq is the seq of the
	// edit that set Content, so a lower one stored later loses; Rx holds
	// one chatstate.ReactionState per reactionKey, raised with $max.
	Target    string                   `bson:"target,omitempty"`
	TargetSeq int64                    `bson:"targetSeq,omitempty"`
	Remove    bool                     `bson:"remove,omitempty"`
	Members   *chatstate.MembersChange `bson:"members,omitempty"`
	EditedAt  int64                    `bson:"editedAt,omitempty"`
	EditSeq   int64                    `bson:"editSeq,omitempty"`
	Deleted   bool                     `bson:"deleted,omitempty"`
	Rx        map[string]int64         `bson:"rx,omitempty"`
}

// reactionKey is the rx field of an (emoji, user) pair: both hex-encoded,
// since an emoji or a user id may hold '.' (a path separator in updates).
func reactionKey(emoji, user string) string {
	return hex.EncodeToString([]byte(emoji)) + "_" + hex.EncodeToString([]byte(user))
}

func reactionsOf(rx map[string]int64) *chatstate.Reactions {
	pairs := make([]chatstate.ReactionPair, 0, len(rx))
	for k, state := range rx {
		e, u, ok := strings.Cut(k, "_")
		emoji, err1 := hex.DecodeString(e)
		user, err2 := hex.DecodeString(u)
		if ok && err1 == nil && err2 == nil {
			pairs = append(pairs, chatstate.ReactionPair{Emoji: string(emoji), User: string(user), State: state})
		}
	}
	return chatstate.BuildReactions(pairs)
}

func toDoc(m chatstate.Message) messageDoc {
	d := messageDoc{
		OID: bson.NewObjectID(), ID: m.ID, ConversationID: m.ConversationID, SenderID: m.SenderID,
		Content: m.Content, Type: m.Type, CreatedAt: m.CreatedAt, Seq: m.Seq, ClientMessageID: m.ClientMessageID,
		Target: m.Target, TargetSeq: m.TargetSeq, Remove: m.Remove, Members: m.Members,
	}
	if d.ClientMessageID == "" {
		d.ClientMessageID = noClientIDPrefix + d.OID.Hex()
	}
	return d
}

func (d messageDoc) message() chatstate.Message {
	m := chatstate.Message{
		ID: d.ID, ConversationID: d.ConversationID, SenderID: d.SenderID, Content: d.Content,
		Type: d.Type, CreatedAt: d.CreatedAt, Seq: d.Seq, ClientMessageID: d.ClientMessageID,
		Target: d.Target, TargetSeq: d.TargetSeq, Remove: d.Remove, Members: d.Members,
		EditedAt: d.EditedAt, Deleted: d.Deleted,
	}
	if d.Members != nil {
		m.Members = d.Members.NonNil()
	}
	if !d.Deleted && len(d.Rx) > 0 {
		m.Reactions = reactionsOf(d.Rx)
	}
	if strings.HasPrefix(m.ClientMessageID, noClientIDPrefix) {
		m.ClientMessageID = ""
	}
	return m
}

func (s *Store) validateMessage(m *chatstate.Message) error {
	if m.Seq < 1 {
		return chatstate.Errorf(chatstate.EINVALID, "seq %d: a stored message has a seq of at least 1", m.Seq)
	}
	return m.Validate(s.cfg.MaxContentBytes)
}

// InsertMessages stores the valid messages of the batch with one unordered
// InsertMany, so one conflict does not stop the rest (see
// chatstate.MessageStore).
func (s *Store) InsertMessages(ctx context.Context, msgs []chatstate.Message) ([]error, error) {
	if len(msgs) > s.cfg.MaxBatch {
		return nil, chatstate.Errorf(chatstate.ETOOLARGE, "batch of %d messages, the limit is %d", len(msgs), s.cfg.MaxBatch)
	}
	errs := make([]error, len(msgs))
	docs := make([]messageDoc, 0, len(msgs))
	at := make([]int, 0, len(msgs)) // docs[i] is msgs[at[i]]
	for i := range msgs {
		if err := s.validateMessage(&msgs[i]); err != nil {
			errs[i] = err
			continue
		}
		docs = append(docs, toDoc(msgs[i]))
		at = append(at, i)
	}
	if len(docs) == 0 {
		return errs, nil
	}
	_, err := s.messages.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if err == nil {
		return errs, s.applyEntries(ctx, msgs, errs)
	}
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil {
		return nil, dbErr("insert messages", err)
	}
	var conflicts []int // indexes into docs
	for _, we := range bwe.WriteErrors {
		if we.Index < 0 || we.Index >= len(docs) {
			return nil, dbErr("insert messages", err)
		}
		if isDuplicateKey(we.Code) {
			conflicts = append(conflicts, we.Index)
		} else {
			errs[at[we.Index]] = dbErr("insert message", we)
		}
	}
	resent, err := s.resends(ctx, docs, conflicts)
	for _, d := range conflicts {
		switch {
		case err != nil:
			// The others are stored: the batch as a whole did not fail.
			errs[at[d]] = err
		case resent[d]:
			errs[at[d]] = chatstate.ErrDuplicateMessage
		default:
			errs[at[d]] = chatstate.ErrSeqTaken
		}
	}
	return errs, s.applyEntries(ctx, msgs, errs)
}

// applyEntries applies the stored entries of a batch to their targets. It
// runs after the insert: an entry stored whose update failed makes the
// batch fail, and the send's retry (a new entry, a higher seq) applies it.
// Each update is one atomic statement that commutes with the others (see
// chatstate.MessageStore.InsertMessages), so nodes need no coordination.
func (s *Store) applyEntries(ctx context.Context, msgs []chatstate.Message, errs []error) error {
	for i, m := range msgs {
		if errs[i] != nil || !chatstate.IsTargetEntry(m.Type) {
			continue
		}
		filter := bson.D{{Key: "conversationId", Value: m.ConversationID}, {Key: "id", Value: m.Target}, notSkip}
		var update bson.D
		switch m.Type {
		case chatstate.TypeEdit:
			filter = append(filter, bson.E{Key: "deleted", Value: bson.D{{Key: "$ne", Value: true}}},
				bson.E{Key: "$or", Value: bson.A{
					bson.D{{Key: "editSeq", Value: bson.D{{Key: "$exists", Value: false}}}},
					bson.D{{Key: "editSeq", Value: bson.D{{Key: "$lt", Value: m.Seq}}}},
				}})
			update = bson.D{{Key: "$set", Value: bson.D{{Key: "content", Value: m.Content}, {Key: "editedAt", Value: m.CreatedAt}, {Key: "editSeq", Value: m.Seq}}}}
		case chatstate.TypeDelete:
			update = bson.D{{Key: "$set", Value: bson.D{{Key: "content", Value: ""}, {Key: "deleted", Value: true}}},
				{Key: "$unset", Value: bson.D{{Key: "editedAt", Value: ""}}}}
		case chatstate.TypeReaction:
			update = bson.D{{Key: "$max", Value: bson.D{{Key: "rx." + reactionKey(m.Content, m.SenderID), Value: chatstate.ReactionState(m.Seq, m.Remove)}}}}
		}
		if _, err := s.messages.UpdateOne(ctx, filter, update); err != nil {
			return dbErr("apply "+m.Type, err)
		}
	}
	return nil
}

// MessageByID returns ENOTFOUND when the conversation has no such message.
func (s *Store) MessageByID(ctx context.Context, conversationID, id string) (chatstate.Message, error) {
	if err := chatstate.ValidateID("conversationId", conversationID); err != nil {
		return chatstate.Message{}, err
	}
	if err := chatstate.ValidateID("message id", id); err != nil {
		return chatstate.Message{}, err
	}
	var d messageDoc
	err := s.messages.FindOne(ctx, bson.D{{Key: "conversationId", Value: conversationID}, {Key: "id", Value: id}, notSkip}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return chatstate.Message{}, chatstate.Errorf(chatstate.ENOTFOUND, "no message %s", id)
	} else if err != nil {
		return chatstate.Message{}, dbErr("find message", err)
	}
	return d.message(), nil
}

func isDuplicateKey(code int) bool { return code == 11000 || code == 11001 }

// resends reports which rejected docs are resends: their (senderId,
// clientMessageId) is stored. The others hit the seq index.
//
// MongoDB names the violated index in the error message, but reports only
// one index when both conflict, and FerretDB names none ("E11000 duplicate
// key error collection: db.messages"). The contract wants the resend case
// (ErrDuplicateMessage) to win, so every rejected message that has a client
// id is checked with one query by (senderId, clientMessageId); the stored
// message it finds is the original of a resend, earlier in this batch or
// before it. Without a client id only the seq index can have fired.
func (s *Store) resends(ctx context.Context, docs []messageDoc, conflicts []int) (map[int]bool, error) {
	var or bson.A
	for _, d := range conflicts {
		if !strings.HasPrefix(docs[d].ClientMessageID, noClientIDPrefix) {
			or = append(or, bson.D{{Key: "senderId", Value: docs[d].SenderID}, {Key: "clientMessageId", Value: docs[d].ClientMessageID}})
		}
	}
	if len(or) == 0 {
		return nil, nil
	}
	cur, err := s.messages.Find(ctx, bson.D{{Key: "$or", Value: or}},
		options.Find().SetProjection(bson.D{{Key: "senderId", Value: 1}, {Key: "clientMessageId", Value: 1}}))
	if err != nil {
		return nil, dbErr("resolve conflicts", err)
	}
	var found []struct {
		SenderID        string `bson:"senderId"`
		ClientMessageID string `bson:"clientMessageId"`
	}
	if err := cur.All(ctx, &found); err != nil {
		return nil, dbErr("resolve conflicts", err)
	}
	type key struct{ sender, client string }
	stored := make(map[key]bool, len(found))
	for _, f := range found {
		stored[key{f.SenderID, f.ClientMessageID}] = true
	}
	resent := make(map[int]bool, len(conflicts))
	for _, d := range conflicts {
		resent[d] = stored[key{docs[d].SenderID, docs[d].ClientMessageID}]
	}
	return resent, nil
}

func (s *Store) pageLimit(limit int) (int64, error) {
	return int64(limit), chatstate.CheckPageSize(limit, s.cfg.MaxPageSize)
}

// MessagesAfter returns up to limit messages with seq > afterSeq, ascending.
// limit above MaxPageSize is too_large.
func (s *Store) MessagesAfter(ctx context.Context, conversationID string, afterSeq int64, limit int) ([]chatstate.Message, error) {
	if err := chatstate.ValidateID("conversationId", conversationID); err != nil {
		return nil, err
	}
	if afterSeq < 0 {
		return nil, chatstate.Errorf(chatstate.EINVALID, "afterSeq %d: must not be negative", afterSeq)
	}
	n, err := s.pageLimit(limit)
	if err != nil {
		return nil, err
	}
	return s.findMessages(ctx, bson.D{
		{Key: "conversationId", Value: conversationID},
		{Key: "seq", Value: bson.D{{Key: "$gt", Value: afterSeq}}},
		notSkip,
	}, 1, n)
}

// MessagesBefore returns the last limit messages with seq < beforeSeq,
// ascending. limit above MaxPageSize is too_large.
func (s *Store) MessagesBefore(ctx context.Context, conversationID string, beforeSeq int64, limit int) ([]chatstate.Message, error) {
	if err := chatstate.ValidateID("conversationId", conversationID); err != nil {
		return nil, err
	}
	n, err := s.pageLimit(limit)
	if err != nil {
		return nil, err
	}
	if beforeSeq <= 1 {
		return []chatstate.Message{}, nil
	}
	msgs, err := s.findMessages(ctx, bson.D{
		{Key: "conversationId", Value: conversationID},
		{Key: "seq", Value: bson.D{{Key: "$lt", Value: beforeSeq}}},
		notSkip,
	}, -1, n)
	slices.Reverse(msgs)
	return msgs, err
}

// notSkip leaves skip markers (chatstate.TypeSkip) out of history reads.
var notSkip = bson.E{Key: "type", Value: bson.D{{Key: "$ne", Value: chatstate.TypeSkip}}}

func (s *Store) findMessages(ctx context.Context, filter bson.D, order int, limit int64) ([]chatstate.Message, error) {
	cur, err := s.messages.Find(ctx, filter, options.Find().
		SetSort(bson.D{{Key: "seq", Value: order}}).
		SetLimit(limit))
	if err != nil {
		return nil, dbErr("find messages", err)
	}
	defer cur.Close(ctx)
	out := make([]chatstate.Message, 0, min(limit, 64))
	for cur.Next(ctx) {
		var d messageDoc
		if err := cur.Decode(&d); err != nil {
			return nil, dbErr("decode message", err)
		}
		out = append(out, d.message())
	}
	if err := cur.Err(); err != nil {
		return nil, dbErr("find messages", err)
	}
	return out, nil
}

// MessageByClientID returns the sender's message with that client id, or
// ENOTFOUND.
func (s *Store) MessageByClientID(ctx context.Context, senderID, clientMessageID string) (chatstate.Message, error) {
	if err := chatstate.ValidateID("senderId", senderID); err != nil {
		return chatstate.Message{}, err
	}
	if err := chatstate.ValidateID("clientMessageId", clientMessageID); err != nil {
		return chatstate.Message{}, err
	}
	var d messageDoc
	err := s.messages.FindOne(ctx, bson.D{
		{Key: "senderId", Value: senderID},
		{Key: "clientMessageId", Value: clientMessageID},
	}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return chatstate.Message{}, chatstate.Errorf(chatstate.ENOTFOUND, "no message %s from %s", clientMessageID, senderID)
	} else if err != nil {
		return chatstate.Message{}, dbErr("find message", err)
	}
	return d.message(), nil
}

// LastSeq is the highest stored seq of the conversation, 0 when none.
func (s *Store) LastSeq(ctx context.Context, conversationID string) (int64, error) {
	if err := chatstate.ValidateID("conversationId", conversationID); err != nil {
		return 0, err
	}
	var d struct {
		Seq int64 `bson:"seq"`
	}
	err := s.messages.FindOne(ctx, bson.D{{Key: "conversationId", Value: conversationID}}, options.FindOne().
		SetSort(bson.D{{Key: "seq", Value: -1}}).
		SetProjection(bson.D{{Key: "seq", Value: 1}})).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	} else if err != nil {
		return 0, dbErr("last seq", err)
	}
	return d.Seq, nil
}
