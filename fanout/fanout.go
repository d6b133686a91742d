// Package fanout carries live deliveries between gateway nodes (a Broker,
// as centrifuge calls it). A node subscribes to two kinds of channel:
//   - a user's channel while it holds a socket of the user: the gateway's
//     own envelopes (typing, presence, receipts, control);
//   - a conversation's channel while it holds a socket of a member: the
//     conversation's messages, published once per message whatever the
//     number of members, so a message crosses to each node holding a
//     recipient once.
//
// It is the only place besides the state packages that talks to Redis for
// the gateway.
//
// Chat messages are not published through a Broker: the commit script
// (cache/message_lib.lua) publishes each one inside the step that caches
// it, to the channel ConversationChannel names, so a cached message has
// always been published and every node receives a conversation's messages
// in seq order (docs/delivery.md).
//
// On a Redis Cluster a conversation's channel is a shard channel (Redis 7
// sharded Pub/Sub): the script SPUBLISHes it in its own slot and the Redis
// broker SSUBSCRIBEs it at the master owning that slot, so a message
// crosses one shard instead of the whole cluster bus. User channels stay
// plain channels (PUBLISH/SUBSCRIBE) everywhere.
package fanout

import (
	"context"

	"github.com/redis/rueidis"
)

// Client is the Redis client a Redis broker is built on. The alias lets
// callers hand one over without importing the Redis client themselves.
type Client = rueidis.Client

// Handler receives what a Broker delivers. Its functions are called on the
// broker's readers, one at a time (a broker on a Cluster reads several
// connections and serialises them), in delivery order; they must not wait
// on the broker.
type Handler struct {
	// Message is one publication to userID's channel.
	Message func(userID, payload string)
	// Conversation is one publication to convID's channel. A
	// conversation's publications arrive in the order they were made.
	Conversation func(convID, payload string)
	// Lost is called once per loss of the subscriber: publications made
	// until Restored are not delivered. A subscriber of several
	// connections (Cluster) is lost when any of them is, or when a slot it
	// subscribes moves to another master; connections lost before Restored
	// are part of the same loss.
	Lost func(err error)
	// Restored is called once after a lost subscriber is back with every
	// subscription (every connection up), before the first publication it
	// delivers on any connection (a socket given a live message before its
	// resync would sync from that seq and skip what was published during
	// the gap). It returns once the resync frames are queued.
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
	// SubscribeConversations returns once publications to the channel of
	// each of convIDs reach this node; on an error some may be subscribed
	// (the caller unsubscribes them). Calls for one conversation must not
	// overlap (the gateway serialises them per conversation).
	SubscribeConversations(ctx context.Context, convIDs []string) error
	// UnsubscribeConversations stops them, as UnsubscribeUser does.
	UnsubscribeConversations(ctx context.Context, convIDs []string) error
	// ConversationChannel names the channel a script publishes convID's
	// messages to, and whether it must SPUBLISH it (a shard channel, in
	// the conversation's slot, on a Cluster) instead of PUBLISH.
	ConversationChannel(convID string) (channel string, sharded bool)
	// PublishToUsers publishes payload to each user's channel in one
	// round trip.
	PublishToUsers(ctx context.Context, userIDs []string, payload string) error
	// Live reports whether the subscriber is connected (all of its
	// connections) and how many times it was lost: a send acknowledged across a loss could let the
	// sender's device skip messages it never got.
	Live() (losses uint64, up bool)
	// Done is closed when the loop Start began has ended.
	Done() <-chan struct{}
	// Close closes the subscriber and waits for the loop to end (cancel
	// Start's context first, or the loop may be in a backoff).
	Close()
}
