package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/luascript"
	"github.com/redis/rueidis"
)

// The durable send path (messaging/) runs in three steps around the store
// write, which docs/delivery.md describes: Reserve takes a seq and marks it
// pending, Commit moves the stored message to ready and publishes every
// ready message below the lowest pending seq, Settle skips a seq that will
// never be stored and reports the settled watermark. No seq above an
// unsettled one is ever cached, published or (through messaging.Sync) read.

// Publish asks Commit to publish a message once it settles: to Channel (none
// when empty) as its seq + "\x00" + Prefix + message JSON + Suffix, so a
// receiver orders and deduplicates by seq without parsing the message.
type Publish struct {
	Channel string
	// Sharded: SPUBLISH, Channel being a shard channel in the
	// conversation's slot (fanout.Broker.ConversationChannel on a Cluster).
	Sharded        bool
	Prefix, Suffix string
	// Members are the conversation's members: when the message bumps
	// activity (chatstate.BumpsActivity), Commit moves the conversation up
	// their cached conversation lists. Empty leaves the lists alone.
	Members []string
}

// Reservation is the outcome of Reserve.
type Reservation struct {
	// Duplicate: the sender's clientMessageId names a cached message, so
	// it was stored and published; Cached is its current copy (edits
	// applied). A resend whose original left the cache gets a Seq instead:
	// the store refuses the second copy and the send answers the original.
	Duplicate bool
	Cached    chatstate.Message
	// Missing: the seq counter is gone (a new conversation, or Redis lost
	// its data); restore it from the store with SetSeqFloor and reserve again.
	Missing bool
	// NeedMembers (ReserveFor with checkSender): the members are not
	// cached, so nothing was reserved; fill them (the directory) and retry.
	NeedMembers bool
	// Seq is the next seq otherwise, pending until committed or skipped.
	Seq int64
	// Members are the conversation's members as of the reservation, read
	// in the same atomic step; nil when they were not cached (read them
	// after the reservation instead).
	Members []string
}

// Reserve is the first step of a durable send: in one round trip it answers
// a resend from the messages cache or takes the conversation's next seq,
// pending for SettleTimeout. clientMessageID may be empty.
func (c *Cache) Reserve(ctx context.Context, conversationID, senderID, clientMessageID string) (Reservation, error) {
	return c.ReserveFor(ctx, ReserveRequest{ConversationID: conversationID, SenderID: senderID, ClientMessageID: clientMessageID})
}

// ReserveRequest is what ReserveFor reserves a seq for.
type ReserveRequest struct {
	ConversationID, SenderID string
	ClientMessageID          string // may be empty: no dedupe
	// CheckSender: the sender must be a member (forbidden otherwise, and
	// nothing is reserved); when the members are not cached nothing is
	// reserved and the reservation reports NeedMembers.
	CheckSender bool
	// Limit, when set, counts the send against the sender's rate limit in
	// the same round trip; a denied send reserves nothing (a seq taken
	// meanwhile is skipped at once) and fails with rate_limited.
	Limit *Limit
}

// ReserveFor is Reserve that also returns the conversation's cached
// members as of the reservation (see ReserveRequest for the options).
func (c *Cache) ReserveFor(ctx context.Context, req ReserveRequest) (Reservation, error) {
	if err := chatstate.ValidateID("conversationId", req.ConversationID); err != nil {
		return Reservation{}, err
	}
	if err := chatstate.ValidateID("senderId", req.SenderID); err != nil {
		return Reservation{}, err
	}
	if req.ClientMessageID != "" {
		if err := chatstate.ValidateID("clientMessageId", req.ClientMessageID); err != nil {
			return Reservation{}, err
		}
	}
	check := ""
	if req.CheckSender {
		check = req.SenderID
	}
	conv := req.ConversationID
	calls := []luascript.Call{{Script: scriptMessageReserve,
		Keys: []string{c.keys.Seq(conv), c.keys.Dedupe(conv), c.keys.Pending(conv), c.keys.Messages(conv), c.keys.Members(conv)},
		Args: []string{dedupeField(req.SenderID, req.ClientMessageID), ms(c.cfg.SettleTimeout), check}}}
	if req.Limit != nil {
		rl, err := c.rateLimitCall(req.SenderID, *req.Limit)
		if err != nil {
			return Reservation{}, err
		}
		calls = append(calls, rl)
	}
	res := luascript.Pipeline(ctx, c.client, calls)
	r, err := parseReservation(res[0])
	if req.Limit == nil {
		return r, err
	}
	limited, lerr := parseRateLimit(res[1])
	switch {
	case lerr != nil:
		err = lerr
	case !limited.Allowed:
		err = &chatstate.Error{Code: chatstate.ERATELIMITED, Message: "too many messages, retry later", RetryAfter: max(limited.RetryAfter, time.Millisecond)}
	default:
		return r, err
	}
	if r.Seq > 0 {
		// Nothing will be stored under it.
		if _, serr := c.Settle(ctx, conv, r.Seq); serr != nil {
			return Reservation{}, serr
		}
	}
	return Reservation{}, err
}

func parseReservation(res rueidis.RedisResult) (Reservation, error) {
	reply, err := res.ToArray()
	if err != nil {
		return Reservation{}, mapErr(err)
	}
	status, err := reply[0].AsInt64()
	if err != nil {
		return Reservation{}, err
	}
	switch {
	case status == -1:
		return Reservation{Missing: true}, nil
	case status == -2:
		return Reservation{NeedMembers: true}, nil
	case status == 1 && len(reply) == 2:
		m, err := decodeMessage(reply[1])
		return Reservation{Duplicate: true, Cached: m}, err
	case status == 0 && len(reply) >= 3:
		r := Reservation{}
		if r.Seq, err = reply[1].AsInt64(); err != nil {
			return Reservation{}, err
		}
		if known, _ := reply[2].AsInt64(); known == 1 {
			r.Members = make([]string, 0, len(reply)-3)
			for _, v := range reply[3:] {
				m, err := v.ToString()
				if err != nil {
					return Reservation{}, err
				}
				r.Members = append(r.Members, m)
			}
		}
		return r, nil
	}
	return Reservation{}, fmt.Errorf("cache: message_reserve: unexpected reply")
}

// Window is a conversation's delivery state after Commit or Settle.
type Window struct {
	// Settled: every seq up to it is stored and published, or skipped for
	// good; nothing above it may be shown to a client yet.
	Settled int64
	// Missing: the seq counter is gone (Redis lost its data); Settled is
	// meaningless until it is restored.
	Missing bool
	// Head is the lowest pending seq (0 when none) and HeadWait how long
	// until it may be skipped (0 when it may be now).
	Head     int64
	HeadWait time.Duration
}

// Committed is the outcome of Commit.
type Committed struct {
	// Message as cached and published: the stored message, or for Already
	// the copy published before.
	Message chatstate.Message
	// Already: the message had been published before this call.
	Already bool
	Window
}

// publishRecord is a ready message as message_lib's publish_record reads it.
type publishRecord struct {
	Seq     int64  `json:"q"`
	Member  string `json:"m"`
	Field   string `json:"f"`
	Prefix  string `json:"p"`
	Suffix  string `json:"s"`
	Channel string `json:"c,omitempty"`
	Sharded bool   `json:"x,omitempty"`
	Sender  string `json:"u"`
	Counted bool   `json:"n"`
	// Apply: a timeline entry whose target's cached copy is updated when
	// it is published (message_lib apply_entry).
	Apply bool `json:"a,omitempty"`
}

// Commit is the step after msg (with its reserved Seq) is stored: msg
// leaves pending, and it and every other stored message below the lowest
// pending seq are cached and published to pub, in seq order. It is
// idempotent: a message that was published before is not published again.
func (c *Cache) Commit(ctx context.Context, msg chatstate.Message, pub Publish) (Committed, error) {
	r := c.CommitMany(ctx, []CommitRequest{{Message: msg, Publish: pub}})[0]
	return r.Committed, r.Err
}

// CommitRequest is one stored message for CommitMany.
type CommitRequest struct {
	Message chatstate.Message
	Publish Publish
}

// CommitResult is the outcome of one CommitRequest.
type CommitResult struct {
	Committed
	Err error
}

// CommitMany commits stored messages (a group commit's batch) in one
// round trip, each as Commit does, in seq order within each conversation:
// Redis runs a conversation's commits in that order (one slot, one
// connection), so a batch's messages publish at once instead of waiting
// on each other. Results are in the order of reqs.
func (c *Cache) CommitMany(ctx context.Context, reqs []CommitRequest) []CommitResult {
	out := make([]CommitResult, len(reqs))
	order := make([]int, 0, len(reqs))
	for i, r := range reqs {
		if err := c.checkCommit(r.Message); err != nil {
			out[i].Err = err
			continue
		}
		order = append(order, i)
	}
	sort.SliceStable(order, func(a, b int) bool { return reqs[order[a]].Message.Seq < reqs[order[b]].Message.Seq })
	calls := make([]luascript.Call, 0, 2*len(order))
	first := make([]int, len(reqs)) // index in calls of each request's commit
	for _, i := range order {
		commit, touch, err := c.commitCalls(reqs[i].Message, reqs[i].Publish)
		if err != nil {
			out[i].Err = err
			first[i] = -1
			continue
		}
		first[i] = len(calls)
		calls = append(calls, commit)
		calls = append(calls, touch...)
	}
	if len(calls) == 0 {
		return out
	}
	res := luascript.Pipeline(ctx, c.client, calls)
	for _, i := range order {
		if first[i] < 0 {
			continue
		}
		out[i].Committed, out[i].Err = parseCommitted(res[first[i]])
	}
	return out
}

// checkCommit checks only what the keys and the reply need: the message
// was validated once, by its send (messaging.Service.SendTo), or comes
// from the store.
func (c *Cache) checkCommit(msg chatstate.Message) error {
	if msg.Seq < 1 || msg.Seq >= chatstate.MaxSeq {
		return chatstate.Errorf(chatstate.EINVALID, "commit needs a stored message, seq %d", msg.Seq)
	}
	return chatstate.ValidateID("conversationId", msg.ConversationID)
}

// commitCalls are message_commit for msg and, for a message that bumps
// activity, the touches of its members' lists: in the same round trip,
// best effort (the lists are other slots). A lost touch leaves a
// conversation lower in a cached list until its next message or the list's
// refill from the store; a resend touches again, which ZADD GT makes
// harmless.
func (c *Cache) commitCalls(msg chatstate.Message, pub Publish) (luascript.Call, []luascript.Call, error) {
	member, err := json.Marshal(msg)
	if err != nil {
		return luascript.Call{}, nil, err
	}
	rec, err := json.Marshal(publishRecord{Seq: msg.Seq, Member: string(member), Field: dedupeField(msg.SenderID, msg.ClientMessageID),
		Prefix: pub.Prefix, Suffix: pub.Suffix, Channel: pub.Channel, Sharded: pub.Sharded,
		Sender: msg.SenderID, Counted: chatstate.CountsAsUnread(msg.Type), Apply: chatstate.IsTargetEntry(msg.Type)})
	if err != nil {
		return luascript.Call{}, nil, err
	}
	commit := luascript.Call{Script: scriptMessageCommit, Keys: c.deliveryKeys(msg.ConversationID),
		Args: []string{itoa(msg.Seq), string(rec), ms(c.cfg.MessageTTL), itoa(int64(c.cfg.MessageLimit)), itoa(int64(c.cfg.DedupeLimit)),
			itoa(int64(c.cfg.UnreadLimit))}}
	var touch []luascript.Call
	if chatstate.BumpsActivity(msg.Type) && len(pub.Members) > 0 {
		touch, _ = c.touchCalls(msg.ConversationID, msg.CreatedAt, pub.Members)
	}
	return commit, touch, nil
}

func parseCommitted(res rueidis.RedisResult) (Committed, error) {
	reply, err := res.ToArray()
	if err != nil {
		return Committed{}, mapErr(err)
	}
	if len(reply) != 6 {
		return Committed{}, fmt.Errorf("cache: message_commit: unexpected reply of %d elements", len(reply))
	}
	status, err := reply[0].AsInt64()
	if err != nil {
		return Committed{}, err
	}
	out := Committed{Already: status == 1}
	if out.Message, err = decodeMessage(reply[1]); err != nil {
		return Committed{}, err
	}
	out.Window, err = parseWindow(reply[2:])
	return out, err
}

// Settle skips seq for good when it is not 0 (the store holds a skip marker
// there, or the send that reserved it was refused by the store), publishes
// what became due, and returns the window.
func (c *Cache) Settle(ctx context.Context, conversationID string, skip int64) (Window, error) {
	if err := chatstate.ValidateID("conversationId", conversationID); err != nil {
		return Window{}, err
	}
	if skip < 0 || skip >= chatstate.MaxSeq {
		return Window{}, chatstate.Errorf(chatstate.EINVALID, "seq %d out of range", skip)
	}
	reply, err := scriptMessageSettle.Exec(ctx, c.client, c.deliveryKeys(conversationID),
		[]string{itoa(skip), ms(c.cfg.MessageTTL), itoa(int64(c.cfg.MessageLimit)), itoa(int64(c.cfg.DedupeLimit)),
			itoa(int64(c.cfg.UnreadLimit))}).ToArray()
	if err != nil {
		return Window{}, mapErr(err)
	}
	if len(reply) != 4 {
		return Window{}, fmt.Errorf("cache: message_settle: unexpected reply of %d elements", len(reply))
	}
	return parseWindow(reply)
}

func (c *Cache) deliveryKeys(conv string) []string {
	return []string{c.keys.Messages(conv), c.keys.Seq(conv), c.keys.Dedupe(conv), c.keys.Restored(conv),
		c.keys.Pending(conv), c.keys.Ready(conv), c.keys.Summary(conv), c.keys.Counted(conv), c.keys.Reads(conv)}
}

// parseWindow reads {settled, head seq, head deadline ms, now ms}.
func parseWindow(v []rueidis.RedisMessage) (Window, error) {
	var n [4]int64
	for i := range n {
		x, err := v[i].AsInt64()
		if err != nil {
			return Window{}, fmt.Errorf("cache: window: %w", err)
		}
		n[i] = x
	}
	w := Window{Settled: n[0], Missing: n[0] < 0, Head: n[1]}
	if w.Missing {
		w.Settled = 0
	}
	if w.Head > 0 && n[2] > n[3] {
		w.HeadWait = time.Duration(n[2]-n[3]) * time.Millisecond
	}
	return w, nil
}
