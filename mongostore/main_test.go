package mongostore_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/mongotest"
	"github.com/chatstate/chatstate/internal/storetest"
	"github.com/chatstate/chatstate/mongostore"
)

func TestMain(m *testing.M) { os.Exit(mongotest.Run(m)) }

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// open returns a store on a database of t's own, closed when t ends.
func open(t testing.TB, cfg mongostore.Config) *mongostore.Store {
	t.Helper()
	s, err := mongostore.Open(ctx(t), mongotest.Start(t), "", cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close(context.Background()) })
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, l chatstate.StoreLimits) (chatstate.Store, error) {
		return mongostore.Open(ctx(t), mongotest.Start(t), "", mongostore.Config{StoreLimits: l})
	})
}
