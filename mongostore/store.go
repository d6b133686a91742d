// Package mongostore is the MongoDB implementation of chatstate.Store.
//
// It uses only what MongoDB 6+ and FerretDB 1.24 both support: no
// transactions, change streams, $lookup, partial or TTL indexes. Every write
// is a single-document operation (or one unordered InsertMany), so each is
// atomic on its own.
//
// Collections:
//
//	messages       {_id: ObjectId, id, conversationId, senderId, content, type,
//	                createdAt, seq, clientMessageId}
//	               unique (conversationId, seq)   "conversationId_seq"  (also the history index)
//	               unique (senderId, clientMessageId) "senderId_clientMessageId"
//	conversations  {_id: id, members: [...], createdAt}
//	               multikey (members)  "members"
//	users          {_id: userId, friends: [...], lastSeen, deviceTokens: {<key>: {deviceId, platform, token, updatedAt}}}
package mongostore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/chatstate/chatstate"
)

// Environment variables read by OpenEnv.
const (
	EnvURI      = "MONGODB_URI"
	EnvDatabase = "MONGODB_DATABASE"
)

// DefaultDatabase is used when neither the database argument nor the URI
// names one.
const DefaultDatabase = "chatstate"

// Index names. Conflict mapping looks for them in duplicate-key messages
// (MongoDB names the index there; FerretDB does not, see insertConflicts).
const (
	idxConvSeq      = "conversationId_seq"
	idxSenderClient = "senderId_clientMessageId"
	idxMembers      = "members"
	idxReadsConv    = "conversationId"
	idxConvID       = "conversationId_id"
)

// Config tunes the store. Zero values mean the documented defaults.
type Config struct {
	// StoreLimits are the limits every store shares: names, defaults and
	// behaviour at each are documented on chatstate.StoreLimits.
	chatstate.StoreLimits
	// ConnectTimeout bounds server selection of every operation whose ctx has
	// no earlier deadline; zero means 10 seconds.
	ConnectTimeout time.Duration
	// Now is the clock for defaulted timestamps; nil means time.Now.
	Now func() time.Time
}

func (c *Config) setDefaults() error {
	var err error
	if c.StoreLimits, err = c.StoreLimits.WithDefaults(); err != nil {
		return err
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Store is a chatstate.Store on MongoDB (or FerretDB).
type Store struct {
	cfg      Config
	client   *mongo.Client
	db       *mongo.Database
	messages *mongo.Collection
	convs    *mongo.Collection
	users    *mongo.Collection
	reads    *mongo.Collection // read positions, _id "<conversation>/<user>"

	membersMu sync.Mutex // UpdateMembers
}

var _ chatstate.Store = (*Store)(nil)

// OpenEnv opens the store named by MONGODB_URI and MONGODB_DATABASE (empty:
// the URI's database, else "chatstate").
func OpenEnv(ctx context.Context, cfg Config) (*Store, error) {
	uri := os.Getenv(EnvURI)
	if uri == "" {
		return nil, chatstate.Errorf(chatstate.EINVALID, "%s is not set", EnvURI)
	}
	return Open(ctx, uri, os.Getenv(EnvDatabase), cfg)
}

// Open connects, checks the server answers and creates the indexes (an
// existing identical index is left alone, so Open is idempotent). database
// empty means the URI's database, else "chatstate".
func Open(ctx context.Context, uri, database string, cfg Config) (*Store, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	cs, err := connstring.ParseAndValidate(uri)
	if err != nil {
		// The driver's message may echo the URI, credentials included.
		return nil, chatstate.Errorf(chatstate.EINVALID, "invalid MongoDB URI")
	}
	if database == "" {
		database = cs.Database
	}
	if database == "" {
		database = DefaultDatabase
	}
	client, err := mongo.Connect(options.Client().ApplyURI(uri).
		SetServerSelectionTimeout(cfg.ConnectTimeout).
		SetAppName("chatstate"))
	if err != nil {
		return nil, fmt.Errorf("mongostore: connect: %w", err)
	}
	db := client.Database(database)
	s := &Store{
		cfg:      cfg,
		client:   client,
		db:       db,
		messages: db.Collection("messages"),
		convs:    db.Collection("conversations"),
		users:    db.Collection("users"),
		reads:    db.Collection("read_positions"),
	}
	if err := client.Ping(ctx, nil); err != nil {
		client.Disconnect(context.Background())
		return nil, dbErr("ping", err)
	}
	if err := s.createIndexes(ctx); err != nil {
		client.Disconnect(context.Background())
		return nil, err
	}
	return s, nil
}

func (s *Store) createIndexes(ctx context.Context) error {
	if err := ensureIndexes(ctx, s.messages,
		mongo.IndexModel{
			Keys:    bson.D{{Key: "conversationId", Value: 1}, {Key: "seq", Value: 1}},
			Options: options.Index().SetName(idxConvSeq).SetUnique(true),
		},
		mongo.IndexModel{
			Keys:    bson.D{{Key: "senderId", Value: 1}, {Key: "clientMessageId", Value: 1}},
			Options: options.Index().SetName(idxSenderClient).SetUnique(true),
		},
		mongo.IndexModel{ // MessageByID and applying entries to their target
			Keys:    bson.D{{Key: "conversationId", Value: 1}, {Key: "id", Value: 1}},
			Options: options.Index().SetName(idxConvID),
		},
	); err != nil {
		return err
	}
	if err := ensureIndexes(ctx, s.convs, mongo.IndexModel{
		Keys:    bson.D{{Key: "members", Value: 1}},
		Options: options.Index().SetName(idxMembers),
	}); err != nil {
		return err
	}
	return ensureIndexes(ctx, s.reads, mongo.IndexModel{
		Keys:    bson.D{{Key: "conversationId", Value: 1}},
		Options: options.Index().SetName(idxReadsConv),
	})
}

// ensureIndexes creates the indexes whose names are missing. MongoDB
// accepts re-creating an identical index, but FerretDB 1.24 panics (and
// drops the connection) on createIndexes with several already existing
// indexes, so existing names are skipped and each index is created alone.
func ensureIndexes(ctx context.Context, coll *mongo.Collection, models ...mongo.IndexModel) error {
	names, err := coll.Indexes().ListSpecifications(ctx)
	if err != nil {
		return dbErr("list indexes of "+coll.Name(), err)
	}
	have := make(map[string]bool, len(names))
	for _, n := range names {
		have[n.Name] = true
	}
	for _, m := range models {
		var opts options.IndexOptions
		for _, set := range m.Options.List() {
			set(&opts)
		}
		if opts.Name != nil && have[*opts.Name] {
			continue
		}
		if _, err := coll.Indexes().CreateOne(ctx, m); err != nil {
			return dbErr("create index on "+coll.Name(), err)
		}
	}
	return nil
}

// Close disconnects; in-flight operations finish or are cut at ctx's end.
func (s *Store) Close(ctx context.Context) error {
	if err := s.client.Disconnect(ctx); err != nil && !errors.Is(err, mongo.ErrClientDisconnected) {
		return fmt.Errorf("mongostore: close: %w", err)
	}
	return nil
}

// Database is the underlying database, for operational tooling and tests.
func (s *Store) Database() *mongo.Database { return s.db }

// dbErr wraps a driver error. The store being unreachable (no server
// selectable, network trouble, a timeout or an expired ctx while waiting
// for it, the client disconnected) becomes chatstate.Unavailable so clients
// retry; anything else is internal and keeps its text for logs.
func dbErr(op string, err error) error {
	if err == nil {
		return nil
	}
	cause := fmt.Errorf("mongostore: %s: %w", op, err)
	if errors.As(err, &topology.ServerSelectionError{}) || errors.Is(err, mongo.ErrClientDisconnected) ||
		mongo.IsNetworkError(err) || mongo.IsTimeout(err) || chatstate.IsOutage(err) {
		return chatstate.Unavailable("the message store", cause)
	}
	return cause
}
