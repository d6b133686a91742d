package push

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/pushqueue"
)

// Presence says who has a live connection (*presence.State).
type Presence interface {
	Connected(ctx context.Context, userIDs []string) (map[string]bool, error)
}

// Tokens lists a user's registered devices (the store).
type Tokens interface {
	DeviceTokens(ctx context.Context, userID string) ([]chatstate.DeviceToken, error)
}

// Inbox is the users' in-app notification lists (the Cache).
type Inbox interface {
	AddNotification(ctx context.Context, n chatstate.Notification) (chatstate.Notification, error)
	Notifications(ctx context.Context, userID string, limit int) ([]chatstate.Notification, error)
}

// Enqueuer queues push jobs (*pushqueue.Queue).
type Enqueuer interface {
	Enqueue(ctx context.Context, jobs ...pushqueue.Job) (int, error)
}

// NotifierConfig tunes a Notifier. Zero values mean the documented defaults.
type NotifierConfig struct {
	// Pushing says a provider is configured. Without one, notifications
	// still reach the in-app lists and no push job is queued.
	Pushing bool
	// Backlog is how many sent messages may wait for their notifications;
	// zero means 10000. Beyond it a message's notifications are dropped and
	// counted: the message itself is stored and delivered by sync.
	Backlog int
	// MaxBody caps a message push's body, in bytes of whole runes; zero
	// means 200.
	MaxBody int
	// Live hands a notification to a connected user in the app (the
	// gateway's notification:new); nil means connected users only find it
	// in their list.
	Live   func(ctx context.Context, n chatstate.Notification)
	Logger *slog.Logger
}

// Notifier turns sent messages into notifications: each member other than
// the sender who has no live connection at send time (invisible users who
// are connected count as connected) gets one in the in-app list and one
// push per registered device, collapsed per conversation.
type Notifier struct {
	cfg      NotifierConfig
	presence Presence
	tokens   Tokens
	inbox    Inbox
	queue    Enqueuer
	m        *Metrics
	sent     chan sentMessage
}

// sentMessage is one message's notification round. A round that fails
// part way keeps its progress for the retry, so nobody gets a second
// in-app entry: offline holds who is still to notify once the presence
// read is done, jobs the pushes not queued yet (queueing dedupes by id).
type sentMessage struct {
	msg        chatstate.Message
	members    []string
	maybe      []string
	classified bool
	offline    []string
	jobs       []pushqueue.Job
	attempt    int
}

// NewNotifier returns a Notifier; Run must be running for MessageSent to
// take effect. m may be nil.
func NewNotifier(p Presence, t Tokens, inbox Inbox, q Enqueuer, m *Metrics, cfg NotifierConfig) *Notifier {
	if cfg.Backlog <= 0 {
		cfg.Backlog = 10000
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 200
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Notifier{cfg: cfg, presence: p, tokens: t, inbox: inbox, queue: q, m: m, sent: make(chan sentMessage, cfg.Backlog)}
}

// MessageSent queues the notifications of a settled message. It never
// blocks the send path: the work happens in Run. maybeOffline are the
// members (never the sender) whose connection state the caller does not
// know, nil for all of them: a gateway leaves out the members it holds a
// socket of, which spares their presence lookups.
func (n *Notifier) MessageSent(msg chatstate.Message, members, maybeOffline []string) {
	select {
	case n.sent <- sentMessage{msg: msg, members: members, maybe: maybeOffline}:
	default:
		n.m.count("notifier", "dropped")
		n.cfg.Logger.Warn("notification backlog full, message not notified", "conversation", msg.ConversationID, "seq", msg.Seq)
	}
}

// Retries of a failed round: a Redis blip or failover must not cost the
// offline members their push. 200 ms doubling, five retries: about 6 s.
const (
	notifyRetries    = 5
	notifyRetryFirst = 200 * time.Millisecond
)

// Run notifies for sent messages until ctx ends. A round that fails is
// retried later from where it stopped, without holding up the others.
func (n *Notifier) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case s := <-n.sent:
			err := n.notifyMessage(ctx, &s)
			if err == nil || ctx.Err() != nil {
				continue
			}
			if s.attempt >= notifyRetries {
				n.m.count("notifier", "failed")
				n.cfg.Logger.Warn("message notifications failed", "conversation", s.msg.ConversationID, "seq", s.msg.Seq, "err", err)
				continue
			}
			n.m.count("notifier", "retried")
			delay := notifyRetryFirst << s.attempt
			s.attempt++
			time.AfterFunc(delay, func() { n.requeue(s) })
		}
	}
}

func (n *Notifier) requeue(s sentMessage) {
	select {
	case n.sent <- s:
	default:
		n.m.count("notifier", "dropped")
		n.cfg.Logger.Warn("notification backlog full, retry dropped", "conversation", s.msg.ConversationID, "seq", s.msg.Seq)
	}
}

// maxPresenceBatch stays within presence's bulk limit.
const maxPresenceBatch = 500

// notifyMessage runs s's round from where it stopped, recording progress
// in s as it goes.
func (n *Notifier) notifyMessage(ctx context.Context, s *sentMessage) error {
	if !s.classified {
		offline, err := n.offlineOf(ctx, s.msg, s.members, s.maybe)
		if err != nil {
			return err
		}
		s.offline, s.classified = offline, true
	}
	msg := s.msg
	// One-to-one chats are urgent; group chats wake nobody at night.
	prio := chatstate.PriorityNormal
	if len(s.members) == 2 {
		prio = chatstate.PriorityHigh
	}
	data := map[string]string{"conversationId": msg.ConversationID, "messageId": msg.ID,
		"seq": strconv.FormatInt(msg.Seq, 10), "senderId": msg.SenderID}
	for len(s.offline) > 0 {
		nt := chatstate.Notification{ID: msg.ID, UserID: s.offline[0], Priority: prio, Title: msg.SenderID,
			Body: clip(msg.Content, n.cfg.MaxBody), Data: data, CreatedAt: msg.CreatedAt}
		_, js, err := n.deliver(ctx, nt, msg.ConversationID)
		if err != nil {
			return err
		}
		s.jobs = append(s.jobs, js...)
		s.offline = s.offline[1:]
	}
	if err := n.enqueue(ctx, s.jobs); err != nil {
		return err
	}
	s.jobs = nil
	return nil
}

// offlineOf returns the members of maybe (nil: all members), the sender
// left out, who have no live connection.
func (n *Notifier) offlineOf(ctx context.Context, msg chatstate.Message, members, maybe []string) ([]string, error) {
	if maybe == nil {
		maybe = members
	}
	others := make([]string, 0, len(maybe))
	for _, u := range maybe {
		if u != msg.SenderID {
			others = append(others, u)
		}
	}
	offline := make([]string, 0, len(others))
	for len(others) > 0 {
		batch := others[:min(len(others), maxPresenceBatch)]
		others = others[len(batch):]
		live, err := n.presence.Connected(ctx, batch)
		if err != nil {
			return nil, err
		}
		for _, u := range batch {
			if !live[u] {
				offline = append(offline, u)
			}
		}
	}
	return offline, nil
}

// QueuePushNotification is the design's queuePushNotification: nt goes to
// the user's in-app list, and then to the app if the user is connected, else
// to a push per registered device. It returns the stored notification and
// how many pushes were queued.
func (n *Notifier) QueuePushNotification(ctx context.Context, nt chatstate.Notification) (chatstate.Notification, int, error) {
	if err := chatstate.ValidateID("userId", nt.UserID); err != nil {
		return nt, 0, err
	}
	live, err := n.presence.Connected(ctx, []string{nt.UserID})
	if err != nil {
		return nt, 0, err
	}
	if live[nt.UserID] {
		stored, err := n.inbox.AddNotification(ctx, nt)
		if err == nil && n.cfg.Live != nil {
			n.cfg.Live(ctx, stored)
		}
		return stored, 0, err
	}
	stored, jobs, err := n.deliver(ctx, nt, nt.Data["conversationId"])
	if err != nil {
		return nt, 0, err
	}
	return stored, len(jobs), n.enqueue(ctx, jobs)
}

// Notifications returns a user's in-app list, newest first.
func (n *Notifier) Notifications(ctx context.Context, userID string, limit int) ([]chatstate.Notification, error) {
	return n.inbox.Notifications(ctx, userID, limit)
}

// deliver adds nt to the user's list and returns it with one push job per
// registered device.
func (n *Notifier) deliver(ctx context.Context, nt chatstate.Notification, collapse string) (chatstate.Notification, []pushqueue.Job, error) {
	// The tokens first: once the list entry is added, this user's part
	// of a round is done, and a retry must not add it twice.
	var devices []chatstate.DeviceToken
	if n.cfg.Pushing {
		var err error
		if devices, err = n.tokens.DeviceTokens(ctx, nt.UserID); err != nil {
			return nt, nil, err
		}
	}
	stored, err := n.inbox.AddNotification(ctx, nt)
	if err != nil || !n.cfg.Pushing {
		return stored, nil, err
	}
	jobs := make([]pushqueue.Job, 0, len(devices))
	for _, d := range devices {
		payload, err := json.Marshal(chatstate.Push{ID: stored.ID, UserID: stored.UserID, DeviceID: d.DeviceID, Platform: d.Platform,
			Token: d.Token, Title: stored.Title, Body: stored.Body, Priority: stored.Priority, CollapseKey: collapse, Data: stored.Data})
		if err != nil {
			return stored, nil, err
		}
		jobs = append(jobs, pushqueue.Job{ID: pushqueue.JobID(stored.ID, stored.UserID, d.DeviceID), Priority: stored.Priority, Payload: payload})
	}
	return stored, jobs, nil
}

// enqueueBatch stays within the queue's batch limit.
const enqueueBatch = 500

func (n *Notifier) enqueue(ctx context.Context, jobs []pushqueue.Job) error {
	for len(jobs) > 0 {
		batch := jobs[:min(len(jobs), enqueueBatch)]
		jobs = jobs[len(batch):]
		added, err := n.queue.Enqueue(ctx, batch...)
		if err != nil {
			return err
		}
		n.m.addQueued(string(batch[0].Priority), added)
	}
	return nil
}

// clip shortens s to at most max bytes without splitting a rune.
func clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
