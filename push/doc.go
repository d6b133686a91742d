// Package push delivers push notifications to devices through one
// chatstate.PushProvider per vendor, and the Router that picks one per
// push. Build them from the environment with FromEnv and New; New returns
// nil when nothing is configured (pushes off; notifications still go to
// the in-app list):
//
//	cfg, err := push.FromEnv(os.Getenv) // every CHATSTATE_PUSH_*, _FCM_*, _APNS_* (Names)
//	prov, err := push.New(ctx, cfg)     // a *Router, or nil
//
// Providers:
//   - Webhook (CHATSTATE_PUSH_WEBHOOK_URL, _SECRET): a signed JSON POST
//     per push to an app backend that delivers it itself; when set it
//     receives every push. Body {"id","userId","deviceId","platform",
//     "token","title","body","priority","data"}, header
//     X-Chatstate-Signature: sha256=<hex HMAC-SHA256 of the raw body>.
//     2xx delivered, 410 token gone, 429/5xx/timeout retry, other 4xx
//     permanent.
//   - FCM (CHATSTATE_FCM_*): Firebase Cloud Messaging HTTP v1 through the
//     Admin SDK (firebase.google.com/go/v4/messaging) with a service
//     account; android and web devices. The SDK's own retry of 503s is
//     turned off (see NewFCM).
//   - APNs (CHATSTATE_APNS_*): Apple's HTTP/2 API through
//     github.com/sideshow/apns2 with a .p8 token key; ios devices.
//
// Every Send is bounded by Config.Timeout and answers in the terms of
// chatstate.PushProvider: chatstate.ErrTokenGone (remove the token),
// chatstate.Retryable (try later, after RetryAfter when set), or a
// permanent error. Providers are safe for concurrent use and keep their
// connections between sends. They do not retry by themselves: the queue's
// worker owns backoff, attempt counts and dead letters.
//
// internal/pushtest has local fakes of all three servers for tests.
package push
