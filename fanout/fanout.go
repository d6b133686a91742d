// Package fanout carries live deliveries between gateway nodes: a node
// subscribes to the channel of each user it holds a socket of, and an
// envelope published to a user's channel reaches every node subscribed to
// it (a Broker, as centrifuge calls it). It is the only place besides the
// state packages that talks to Redis for the gateway.
//
// Chat messages are not published through a Broker: the commit script
// (cache/message_lib.lua) publishes each one inside the step that caches
// it, to the channels Channels names, so a cached message has always been
// published and every node receives a conversation's messages in seq
// order (docs/delivery.md).
package fanout

import (
	"context"

	"github.com/redis/rueidis"
)

// Client is the Redis client a Redis broker is built on. The alias lets
// callers hand one over without importing the Redis client themselves.
type Client = rueidis.Client

// Handler receives what a Broker delivers. Message and Restored are called
// on the broker's reader, one at a time, in delivery order.
type Handler struct {
	// Message is one publication to userID's channel.
	Message func(userID, payload string)
	// Lost is called once per loss of the subscriber: publications made
	// until Restored are not delivered.
	Lost func(err error)
	// Restored is called once after a lost subscriber is back with every
	// subscription, before the first publication it delivers (a socket
	// given a live message before its resync would sync from that seq and
	// skip what was published during the gap). It returns once the
	// resync frames are queued.
	Restored func(ctx context.Context)
}

// Broker is one node's fan-out connection.
type Broker interface {
	// Start opens the subscriber and keeps it open (restoring every
	// subscription after a loss) until ctx ends or Close is called.
	Start(ctx context.Context, h Handler) error
	// SubscribeUser returns once publications to userID's channel reach
	// this node. Calls for one user must not overlap (the gateway
	// serialises them per user).
	SubscribeUser(ctx context.Context, userID string) error
	// UnsubscribeUser stops them; a failure leaves a harmless extra
	// subscription until the next reconnect.
	UnsubscribeUser(ctx context.Context, userID string) error
	// PublishToUsers publishes payload to each user's channel in one
	// round trip.
	PublishToUsers(ctx context.Context, userIDs []string, payload string) error
	// Channels names the channels of userIDs, for a script that publishes
	// to them itself (cache.Publish).
	Channels(userIDs []string) []string
	// Live reports whether the subscriber is connected and how many times
	// it was lost: a send acknowledged across a loss could let the
	// sender's device skip messages it never got.
	Live() (losses uint64, up bool)
	// Done is closed when the loop Start began has ended.
	Done() <-chan struct{}
	// Close closes the subscriber and waits for the loop to end (cancel
	// Start's context first, or the loop may be in a backoff).
	Close()
}
