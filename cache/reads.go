package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/chatstate/chatstate"
	"github.com/chatstate/chatstate/internal/luascript"
	"github.com/redis/rueidis"
)

// Read positions, receipts and the conversation list (docs/redis-keys.md,
// "Conversation list"). Per conversation, on its slot {c:C}: the read
// positions (reads), the list entry (summary) and the counted seqs
// (counted), the latter two written by message_lib's summarize as each
// message publishes. Per user, on {u:U}: the list order (convs), touched
// after each commit and refilled from the store when missing.

// ReadMark is the outcome of MarkRead.
type ReadMark struct {
	// NotFilled: the conversation's read positions were not loaded from
	// the store since Redis lost them (or ever): FillReads, then again.
	NotFilled bool
	// NoSummary: Redis has no summary of the conversation (no message
	// published since it lost its data): FillSummary, then again.
	NoSummary bool
	// Seq is the reader's position after the call.
	Seq int64
	// Receipt, when not 0, is the seq a receipt may announce now; the
	// call recorded it as sent.
	Receipt int64
	// Wait, when not 0, is how long until a receipt held back by the
	// interval may go: call MarkRead with seq 0 then.
	Wait time.Duration
	// Raised: this call moved the position (so it is worth storing).
	Raised bool
}

// MarkRead raises user's read position in conv to seq, never above the
// last published seq nor down, and decides whether a receipt may be sent:
// at most one per user and conversation per interval, across all nodes.
// seq 0 only flushes a held-back receipt.
func (c *Cache) MarkRead(ctx context.Context, conv, user string, seq int64, interval time.Duration) (ReadMark, error) {
	if err := validateIDs("conversationId", conv, "userId", user); err != nil {
		return ReadMark{}, err
	}
	if seq < 0 || seq >= chatstate.MaxSeq {
		return ReadMark{}, chatstate.Errorf(chatstate.EINVALID, "seq must be an integer in 0..%d", chatstate.MaxSeq-1)
	}
	n, err := ints(scriptReadsMark.Exec(ctx, c.client, []string{c.keys.Reads(conv), c.keys.Summary(conv)},
		[]string{user, itoa(seq), ms(interval)}))
	if err != nil {
		return ReadMark{}, err
	}
	switch {
	case len(n) == 1 && n[0] == -1:
		return ReadMark{NotFilled: true}, nil
	case len(n) == 1 && n[0] == -2:
		return ReadMark{NoSummary: true}, nil
	case len(n) != 4:
		return ReadMark{}, fmt.Errorf("cache: reads_mark: unexpected reply %v", n)
	}
	return ReadMark{Seq: n[0], Receipt: n[1], Wait: time.Duration(n[2]) * time.Millisecond, Raised: n[3] == 1}, nil
}

// FillReads merges read positions loaded from the store into conv's
// (raising only) and marks them filled.
func (c *Cache) FillReads(ctx context.Context, conv string, reads map[string]int64) error {
	if err := validateIDs("conversationId", conv); err != nil {
		return err
	}
	args := make([]string, 0, 2*len(reads))
	for u, seq := range reads {
		if err := chatstate.ValidateID("userId", u); err != nil {
			return err
		}
		args = append(args, u, itoa(seq))
	}
	return mapErr(scriptReadsFill.Exec(ctx, c.client, []string{c.keys.Reads(conv)}, args).Error())
}

// Reads returns conv's read positions by user; filled is false when they
// were not loaded from the store since Redis lost them (FillReads).
func (c *Cache) Reads(ctx context.Context, conv string) (reads map[string]int64, filled bool, err error) {
	if err := validateIDs("conversationId", conv); err != nil {
		return nil, false, err
	}
	all, err := c.client.Do(ctx, c.client.B().Hgetall().Key(c.keys.Reads(conv)).Build()).AsStrMap()
	if err != nil {
		return nil, false, mapErr(err)
	}
	reads = make(map[string]int64, len(all))
	for f, v := range all {
		if f == "~" {
			filled = true
			continue
		}
		if strings.Contains(f, ":") {
			continue // receipt state (reads_mark)
		}
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			reads[f] = n
		}
	}
	return reads, filled, nil
}

// FillSummary restores conv's summary from the store: its last seq, last
// counted message (nil when none) and the seqs of recent counted messages
// (so unread counts over them are right again), raising only.
func (c *Cache) FillSummary(ctx context.Context, conv string, lastSeq int64, last *chatstate.Message, counted ...int64) error {
	if err := validateIDs("conversationId", conv); err != nil {
		return err
	}
	args := []string{itoa(lastSeq), "0", ""}
	for _, seq := range counted {
		args = append(args, itoa(seq))
	}
	if last != nil {
		b, err := json.Marshal(last)
		if err != nil {
			return err
		}
		args[1], args[2] = itoa(last.Seq), string(b)
	}
	return mapErr(scriptSummaryFill.Exec(ctx, c.client, []string{c.keys.Summary(conv), c.keys.Counted(conv)}, args).Error())
}

// Summary is one conversation's list entry as one user sees it.
type Summary struct {
	ConversationID string
	// Missing: Redis has no summary (FillSummary); LastSeq and
	// LastMessage are then unknown.
	Missing     bool
	LastSeq     int64
	LastMessage *chatstate.Message // nil when no counted message
	ReadSeq     int64
	// Unread counts messages from others above ReadSeq, up to
	// Config.UnreadLimit.
	Unread int64
	// ReadsFilled is false when the read positions were not loaded from
	// the store since Redis lost them (FillReads).
	ReadsFilled bool
}

// Summaries returns user's view of each conversation, one pipelined round
// trip.
func (c *Cache) Summaries(ctx context.Context, user string, convs []string) ([]Summary, error) {
	if err := validateIDs("userId", user); err != nil {
		return nil, err
	}
	calls := make([]luascript.Call, len(convs))
	for i, conv := range convs {
		if err := chatstate.ValidateID("conversationId", conv); err != nil {
			return nil, err
		}
		calls[i] = luascript.Call{Script: scriptSummaryRead, Keys: []string{c.keys.Summary(conv), c.keys.Reads(conv), c.keys.Counted(conv), c.keys.Messages(conv)}, Args: []string{user, itoa(int64(c.cfg.UnreadLimit))}}
	}
	if len(calls) == 0 {
		return []Summary{}, nil
	}
	out := make([]Summary, len(convs))
	for i, res := range luascript.Pipeline(ctx, c.client, calls) {
		v, err := res.ToArray()
		if err != nil {
			return nil, mapErr(err)
		}
		if len(v) != 5 {
			return nil, fmt.Errorf("cache: summary_read: unexpected reply of %d elements", len(v))
		}
		s := Summary{ConversationID: convs[i]}
		var n [5]int64
		for _, j := range []int{0, 2, 3, 4} {
			if n[j], err = v[j].AsInt64(); err != nil {
				return nil, fmt.Errorf("cache: summary_read: %w", err)
			}
		}
		s.LastSeq, s.Missing, s.ReadSeq, s.Unread, s.ReadsFilled = n[0], n[0] < 0, n[2], n[3], n[4] == 1
		if s.Missing {
			s.LastSeq = 0
		}
		if raw, _ := v[1].ToString(); raw != "" {
			m, err := decodeMessage(v[1])
			if err != nil {
				return nil, err
			}
			s.LastMessage = &m
		}
		out[i] = s
	}
	return out, nil
}

func validateIDs(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if err := chatstate.ValidateID(pairs[i], pairs[i+1]); err != nil {
			return err
		}
	}
	return nil
}

func ints(r rueidis.RedisResult) ([]int64, error) {
	v, err := r.AsIntSlice()
	return v, mapErr(err)
}
