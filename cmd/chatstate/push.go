package main

import (
	"context"
	"log/slog"
	"sync"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/cache"
	"github.com/chatstate/chatstate/presence"
	"github.com/chatstate/chatstate/push"
	"github.com/chatstate/chatstate/pushqueue"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/rueidis"
)

// pushing is one node's push pipeline: the queue, the notifier that fills
// it, and a worker that empties it when a provider is configured.
type pushing struct {
	queue    *pushqueue.Queue
	notifier *push.Notifier
	worker   *push.Worker // nil: pushes are off
	metrics  *push.Metrics
}

// newPushing builds the pipeline; live hands a notification to a connected
// user (the gateway, built later).
func newPushing(ctx context.Context, cfg config, client rueidis.Client, state *presence.State, store chatstate.Store, cch *cache.Cache,
	reg prometheus.Registerer, live func(context.Context, chatstate.Notification), log *slog.Logger) (*pushing, error) {
	provider, err := push.New(ctx, cfg.Push)
	if err != nil {
		return nil, err
	}
	p := &pushing{metrics: push.NewMetrics(reg)}
	p.queue = pushqueue.New(client, pushqueue.Config{KeyPrefix: cfg.Redis.KeyPrefix, Lease: cfg.PushLease})
	p.notifier = push.NewNotifier(state, store, cch, p.queue, p.metrics, push.NotifierConfig{Pushing: provider != nil, Live: live, Logger: log})
	if provider == nil {
		log.Info("pushes are off: no provider configured (CHATSTATE_PUSH_WEBHOOK_URL, CHATSTATE_FCM_CREDENTIALS_FILE or CHATSTATE_APNS_KEY_FILE); notifications still reach the in-app lists")
		return p, nil
	}
	log.Info("pushes on", "provider", provider.Name())
	p.worker = push.NewWorker(p.queue, provider, store, p.metrics, push.WorkerConfig{MaxAttempts: cfg.PushMaxAttempts, Logger: log})
	return p, nil
}

// run runs the notifier and the worker until ctx ends.
func (p *pushing) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); p.notifier.Run(ctx) }()
	if p.worker != nil {
		wg.Add(1)
		go func() { defer wg.Done(); p.worker.Run(ctx) }()
	}
	wg.Wait()
}
