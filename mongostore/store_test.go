package mongostore_test

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/mongotest"
	"github.com/chatstate/chatstate/mongostore"
)

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := chatstate.ErrorCode(err); got != code {
		t.Fatalf("%s: %v (code %q), want code %q", what, err, got, code)
	}
}

func msg(conv, sender string, seq int64) chatstate.Message {
	return chatstate.Message{
		ID: fmt.Sprintf("m-%s-%d", conv, seq), ConversationID: conv, SenderID: sender,
		Content: "hi", Type: "text", CreatedAt: 1700000000000 + seq, Seq: seq,
		ClientMessageID: fmt.Sprintf("cm-%s-%d", conv, seq),
	}
}

// Reopening the same database must not fail on the existing indexes, and
// the unique indexes must be the ones the conflict mapping relies on.
func TestOpenIsIdempotentAndCreatesIndexes(t *testing.T) {
	uri := mongotest.Start(t)
	for range 2 {
		s, err := mongostore.Open(ctx(t), uri, "", mongostore.Config{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer s.Close(ctx(t))
	}
	s, err := mongostore.Open(ctx(t), uri, "", mongostore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx(t))
	cur, err := s.Database().Collection("messages").Indexes().List(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	var idx []struct {
		Name   string `bson:"name"`
		Unique bool   `bson:"unique"`
	}
	if err := cur.All(ctx(t), &idx); err != nil {
		t.Fatal(err)
	}
	unique := map[string]bool{}
	for _, i := range idx {
		unique[i.Name] = i.Unique
	}
	for _, name := range []string{"conversationId_seq", "senderId_clientMessageId"} {
		if !unique[name] {
			t.Errorf("index %s: missing or not unique (indexes: %+v)", name, idx)
		}
	}
}

// Documents use chatstate.Message's JSON field names so other tools can
// read the collection.
func TestMessageDocumentFieldNames(t *testing.T) {
	s := open(t, mongostore.Config{})
	m := msg("c1", "u1", 1)
	if errs, err := s.InsertMessages(ctx(t), []chatstate.Message{m}); err != nil || errs[0] != nil {
		t.Fatalf("insert: %v %v", errs, err)
	}
	var raw bson.M
	if err := s.Database().Collection("messages").FindOne(ctx(t), bson.D{{Key: "id", Value: m.ID}}).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	want := bson.M{"id": m.ID, "conversationId": m.ConversationID, "senderId": m.SenderID, "content": m.Content,
		"type": m.Type, "createdAt": m.CreatedAt, "seq": m.Seq, "clientMessageId": m.ClientMessageID}
	for k, v := range want {
		if raw[k] != v {
			t.Errorf("field %s = %#v, want %#v", k, raw[k], v)
		}
	}
}

// Messages without a client id get a stand-in key so they never collide in
// the unique index; it must never leak out or be found by lookup.
func TestNoClientIDStandIn(t *testing.T) {
	s := open(t, mongostore.Config{})
	a, b := msg("c1", "u1", 1), msg("c1", "u1", 2)
	a.ClientMessageID, b.ClientMessageID = "", ""
	if errs, err := s.InsertMessages(ctx(t), []chatstate.Message{a, b}); err != nil || errs[0] != nil || errs[1] != nil {
		t.Fatalf("insert: %v %v", errs, err)
	}
	got, err := s.MessagesAfter(ctx(t), "c1", 0, 10)
	if err != nil || len(got) != 2 || got[0] != a || got[1] != b {
		t.Fatalf("MessagesAfter = %+v, %v", got, err)
	}
	// A taken seq without a client id can only be a seq conflict.
	c := msg("c1", "u2", 2)
	c.ClientMessageID = ""
	errs, err := s.InsertMessages(ctx(t), []chatstate.Message{c})
	if err != nil || !errors.Is(errs[0], chatstate.ErrSeqTaken) {
		t.Fatalf("seq clash without client id: %v, %v", errs, err)
	}
}

// Device ids may contain '.', which would otherwise be read as a path in
// the users document.
func TestDeviceIDWithDots(t *testing.T) {
	s := open(t, mongostore.Config{})
	c := ctx(t)
	tok := chatstate.DeviceToken{DeviceID: "ios.phone.1", Platform: "ios", Token: "abc", UpdatedAt: 7}
	if err := s.SetDeviceToken(c, "u", tok); err != nil {
		t.Fatal(err)
	}
	other := chatstate.DeviceToken{DeviceID: "ios", Platform: "ios", Token: "def", UpdatedAt: 8}
	if err := s.SetDeviceToken(c, "u", other); err != nil {
		t.Fatal(err)
	}
	got, err := s.DeviceTokens(c, "u")
	slices.SortFunc(got, func(a, b chatstate.DeviceToken) int { return strings.Compare(a.DeviceID, b.DeviceID) })
	if err != nil || !slices.Equal(got, []chatstate.DeviceToken{other, tok}) {
		t.Fatalf("DeviceTokens = %+v, %v", got, err)
	}
	if err := s.RemoveDeviceToken(c, "u", "ios.phone.1"); err != nil {
		t.Fatal(err)
	}
	got, err = s.DeviceTokens(c, "u")
	if err != nil || !slices.Equal(got, []chatstate.DeviceToken{other}) {
		t.Fatalf("after remove = %+v, %v", got, err)
	}
}

func TestOpenErrors(t *testing.T) {
	_, err := mongostore.Open(ctx(t), "not a uri", "", mongostore.Config{})
	wantCode(t, "invalid URI", err, chatstate.EINVALID)
	if err != nil && strings.Contains(err.Error(), "secret") {
		t.Fatalf("error leaks the URI: %v", err)
	}
	_, err = mongostore.Open(ctx(t), "mongodb://u:secret@[::1", "", mongostore.Config{})
	wantCode(t, "malformed URI", err, chatstate.EINVALID)
	if strings.Contains(err.Error(), "secret") {
		t.Fatalf("error leaks the password: %v", err)
	}

	// A port nobody listens on: grab a free one and close it again.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = mongostore.Open(ctx(t), "mongodb://"+addr+"/x", "", mongostore.Config{ConnectTimeout: 300 * time.Millisecond})
	wantCode(t, "unreachable server", err, chatstate.EUNAVAILABLE)
}

// After Close, operations fail with a typed error rather than hanging.
func TestClosedStore(t *testing.T) {
	s, err := mongostore.Open(ctx(t), mongotest.Start(t), "", mongostore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx(t)); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_, err = s.LastSeq(ctx(t), "c")
	wantCode(t, "LastSeq after Close", err, chatstate.EUNAVAILABLE)
}
