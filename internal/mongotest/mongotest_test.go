package mongotest

import (
	"context"
	"os"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
)

func TestMain(m *testing.M) { os.Exit(Run(m)) }

func TestWithDatabase(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"mongodb://127.0.0.1:27017", "mongodb://127.0.0.1:27017/db1"},
		{"mongodb://127.0.0.1:27017/", "mongodb://127.0.0.1:27017/db1"},
		{"mongodb://127.0.0.1:27017/other", "mongodb://127.0.0.1:27017/db1"},
		{"mongodb://u:p@h1:1,h2:2/other?replicaSet=rs&w=1", "mongodb://u:p@h1:1,h2:2/db1?replicaSet=rs&w=1"},
		{"mongodb://h1?tls=true", "mongodb://h1/db1?tls=true"},
		{"mongodb+srv://c.example.net/?retryWrites=true", "mongodb+srv://c.example.net/db1?retryWrites=true"},
	} {
		got, err := WithDatabase(tc.in, "db1")
		if err != nil || got != tc.want {
			t.Errorf("WithDatabase(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if _, err := WithDatabase("127.0.0.1:27017", "db1"); err == nil {
		t.Error("URI without scheme: want error")
	}
}

func TestStartIsolatesDatabases(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	uriA, uriB := Start(t), Start(t)
	csA, err := connstring.ParseAndValidate(uriA)
	if err != nil {
		t.Fatal(err)
	}
	csB, _ := connstring.ParseAndValidate(uriB)
	if csA.Database == "" || csA.Database == csB.Database {
		t.Fatalf("databases %q and %q: want distinct, non-empty", csA.Database, csB.Database)
	}
	c, err := mongo.Connect(options.Client().ApplyURI(uriA))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Disconnect(ctx)
	if err := c.Ping(ctx, nil); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if _, err := c.Database(csA.Database).Collection("x").InsertOne(ctx, bson.D{{Key: "_id", Value: "k"}, {Key: "v", Value: 1}}); err != nil {
		t.Fatalf("insert: %v", err)
	}
	n, err := c.Database(csB.Database).Collection("x").CountDocuments(ctx, bson.D{})
	if err != nil || n != 0 {
		t.Fatalf("count in the other database = %d, %v; want 0", n, err)
	}
	var got struct {
		V int `bson:"v"`
	}
	if err := c.Database(csA.Database).Collection("x").FindOne(ctx, bson.D{{Key: "_id", Value: "k"}}).Decode(&got); err != nil || got.V != 1 {
		t.Fatalf("read back = %+v, %v", got, err)
	}
}

func TestDatabaseNameIsValid(t *testing.T) {
	name := DatabaseName(t)
	if len(name) > 63 {
		t.Fatalf("%q is longer than 63 bytes", name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			t.Fatalf("%q has %q", name, c)
		}
	}
}
