package presence

import (
	"context"
	"fmt"

	"github.com/chatstate/chatstate/internal/keyscan"
	"github.com/chatstate/chatstate/internal/luascript"
)

// SetUserTyping marks userID as typing in conversationID for TypingTTL.
func (s *State) SetUserTyping(ctx context.Context, userID, conversationID string) error {
	if err := validate("userId", userID, "conversationId", conversationID); err != nil {
		return err
	}
	return luascript.Err(s.exec(ctx, luascript.Call{Script: scriptTypeStart, Keys: []string{s.k.Typing(conversationID)},
		Args: []string{userID, s.typingTTL, s.maxTypers}}).Error())
}

// StopUserTyping removes userID's typing entry (a single atomic ZREM).
func (s *State) StopUserTyping(ctx context.Context, userID, conversationID string) error {
	if err := validate("userId", userID, "conversationId", conversationID); err != nil {
		return err
	}
	return luascript.Err(s.c.Do(ctx, s.c.B().Zrem().Key(s.k.Typing(conversationID)).Member(userID).Build()).Error())
}

// TypingUsers lists the users typing in conversationID (at most MaxTypers).
func (s *State) TypingUsers(ctx context.Context, conversationID string) ([]string, error) {
	if err := validate("conversationId", conversationID); err != nil {
		return nil, err
	}
	ids, err := s.exec(ctx, luascript.Call{Script: scriptTypeList, Keys: []string{s.k.Typing(conversationID)}}).AsStrSlice()
	if err != nil {
		return nil, luascript.Err(err)
	}
	if ids == nil {
		ids = []string{}
	}
	return ids, nil
}

// TypingCount is the result of a walk over the typing sets.
type TypingCount struct {
	Conversations int `json:"conversations"` // typing sets seen
	Expired       int `json:"expired"`       // expired entries (removed by SweepTyping)
	Live          int `json:"live"`          // entries not expired
	// Complete: every typing set was visited (TypingEntries may stop at
	// its bound).
	Complete bool `json:"complete"`
}

// typingBatch is the SCAN COUNT of one typing walk step, and so the most
// scripts one pipelined round trip sends.
const typingBatch = 200

// SweepTyping removes expired entries from every typing set: those of a
// user who stopped without typing:stop while others kept typing (a set
// with no live entry expires by itself). Keys are found with SCAN MATCH,
// never KEYS; on a Cluster on every master.
func (s *State) SweepTyping(ctx context.Context) (TypingCount, error) {
	return s.walkTyping(ctx, true, 0)
}

// TypingEntries counts the typing entries of up to maxSets conversations
// (zero means all) without removing any.
func (s *State) TypingEntries(ctx context.Context, maxSets int) (TypingCount, error) {
	return s.walkTyping(ctx, false, maxSets)
}

func (s *State) walkTyping(ctx context.Context, remove bool, maxSets int) (TypingCount, error) {
	var out TypingCount
	flag := ""
	if remove {
		flag = "1"
	}
	var cursor uint64
	for {
		batch, next, err := keyscan.Step(ctx, s.c, cursor, s.k.TypingPattern(), "zset", typingBatch)
		if err != nil {
			return out, luascript.Err(err)
		}
		calls := make([]luascript.Call, len(batch))
		for i, k := range batch {
			calls[i] = luascript.Call{Script: scriptTypeSweep, Keys: []string{k}, Args: []string{flag}}
		}
		if len(calls) > 0 {
			for _, r := range s.pipeline(ctx, calls) {
				n, err := r.AsIntSlice()
				if err != nil {
					return out, luascript.Err(err)
				}
				if len(n) != 2 {
					return out, fmt.Errorf("presence: typing_sweep: unexpected reply")
				}
				out.Conversations++
				out.Expired += int(n[0])
				out.Live += int(n[1])
			}
		}
		if cursor = next; cursor == 0 {
			out.Complete = true
			return out, nil
		}
		if maxSets > 0 && out.Conversations >= maxSets {
			return out, nil
		}
	}
}
