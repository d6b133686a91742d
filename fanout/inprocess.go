package fanout

import (
	"context"
	"sync"

	"github.com/alicebob/miniredis/v2"
)

// InProcess is the Broker of the embedded single-node mode: it subscribes
// inside the embedded Redis (miniredis) instead of over a connection, so
// neither a publication nor its delivery takes a round trip. The commit
// script's PUBLISHes reach it the same way: miniredis runs a script under
// its lock and hands each publication to every subscriber before it
// continues, so a conversation's messages arrive in seq order, as over a
// connection. There is no connection to lose: Live is always up.
//
// miniredis holds its lock until a publication is taken, so Handler.Message
// must not wait on the embedded Redis (the gateway's only queues frames).
type InProcess struct {
	srv *miniredis.Miniredis
	names

	mu       sync.Mutex // guards sub's subscriptions against Close
	sub      *miniredis.Subscriber
	channels map[string]struct{}
	closed   bool
	stop     chan struct{}
	done     chan struct{}
}

var _ Broker = (*InProcess)(nil)

// NewInProcess returns a broker inside srv with the key prefix of the
// other services. It does nothing until Start.
func NewInProcess(srv *miniredis.Miniredis, keyPrefix string) *InProcess {
	return &InProcess{srv: srv, names: newNames(keyPrefix), channels: make(map[string]struct{}),
		stop: make(chan struct{}), done: make(chan struct{})}
}

// Start subscribes inside the embedded Redis and delivers until Close
// (ctx only bounds nothing here: there is nothing to reconnect).
func (b *InProcess) Start(_ context.Context, h Handler) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errClosed
	}
	b.sub = b.srv.NewSubscriber()
	msgs := b.sub.Messages()
	go func() {
		defer close(b.done)
		for {
			select {
			case m := <-msgs:
				b.route(h, m.Channel, m.Message)
			case <-b.stop:
				return
			}
		}
	}()
	return nil
}

// SubscribeUser subscribes at once: publications made after it returns
// are delivered.
func (b *InProcess) SubscribeUser(_ context.Context, userID string) error {
	return b.subscribe(b.keys.UserChannel(userID))
}

// UnsubscribeUser unsubscribes at once.
func (b *InProcess) UnsubscribeUser(_ context.Context, userID string) error {
	b.unsubscribe(b.keys.UserChannel(userID))
	return nil
}

// SubscribeConversations subscribes at once.
func (b *InProcess) SubscribeConversations(_ context.Context, convIDs []string) error {
	return b.subscribe(b.convChannels(convIDs)...)
}

// UnsubscribeConversations unsubscribes at once.
func (b *InProcess) UnsubscribeConversations(_ context.Context, convIDs []string) error {
	b.unsubscribe(b.convChannels(convIDs)...)
	return nil
}

// ConversationChannel names convID's channel: plain PUBLISH.
func (b *InProcess) ConversationChannel(convID string) (string, bool) {
	return b.keys.ConversationChannel(convID), false
}

func (b *InProcess) subscribe(chs ...string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errClosed
	}
	if b.sub == nil {
		return errNotStarted
	}
	for _, ch := range chs {
		b.channels[ch] = struct{}{}
		b.sub.Subscribe(ch)
	}
	return nil
}

func (b *InProcess) unsubscribe(chs ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sub == nil {
		return
	}
	for _, ch := range chs {
		delete(b.channels, ch)
		b.sub.Unsubscribe(ch)
	}
}

// PublishToUsers publishes inside the embedded Redis.
func (b *InProcess) PublishToUsers(_ context.Context, userIDs []string, payload string) error {
	for _, u := range userIDs {
		b.srv.Publish(b.keys.UserChannel(u), payload)
	}
	return nil
}

// Live is always up: nothing can be lost.
func (b *InProcess) Live() (uint64, bool) { return 0, true }

// Done is closed when the delivery loop has ended.
func (b *InProcess) Done() <-chan struct{} { return b.done }

// Close unsubscribes everything and ends the delivery loop. The loop keeps
// reading until the last subscription is gone: a publication in flight
// holds the subscriber until it is taken. miniredis cannot drop a
// subscriber it did not create for a connection, so the empty one stays.
func (b *InProcess) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	started := b.sub != nil
	if started {
		for ch := range b.channels {
			b.sub.Unsubscribe(ch)
		}
		clear(b.channels)
	}
	b.mu.Unlock()
	if started {
		close(b.stop)
		<-b.done
	}
}
