package presence

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/chatstate/chatstate/internal/luascript"
)

// purgeAge is how long a dead instance stays in the nodes set: by then every
// device it registered has expired on its own, so forgetting it cannot
// revive anything.
func (s *State) purgeAge() time.Duration {
	return s.cfg.NodeTimeout + s.cfg.DeviceTTL + time.Minute
}

// Heartbeat records that this instance is alive (Redis time) and refreshes
// the in-memory set of dead instances that every script call passes along.
// Call it once before serving, then let Run repeat it.
func (s *State) Heartbeat(ctx context.Context) error { return s.heartbeat(ctx, false) }

func (s *State) heartbeat(ctx context.Context, markDead bool) error {
	mark := ""
	if markDead {
		mark = "1"
	}
	conns := 0
	if s.cfg.Connections != nil {
		conns = s.cfg.Connections()
	}
	r := s.exec(ctx, luascript.Call{Script: scriptHeartbeat, Keys: []string{s.k.Nodes(), s.k.NodeInfo()}, Args: []string{
		s.instance, ms(s.cfg.NodeTimeout), ms(s.purgeAge()), mark, strconv.Itoa(maxDead), strconv.Itoa(conns)}})
	dead, err := r.AsStrSlice()
	if err != nil {
		return luascript.Err(err)
	}
	joined := strings.Join(dead, " ")
	s.dead.Store(&joined)
	return nil
}

// Run heartbeats every HeartbeatInterval until ctx ends, then marks this
// instance dead at once so other nodes drop its devices on their next
// heartbeat instead of after NodeTimeout. A crashed node never marks itself:
// others notice when its heartbeat is NodeTimeout old. Errors are logged and
// retried on the next tick; Run returns the error of the final mark.
func (s *State) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		// A beat that cannot land within NodeTimeout is worthless, and a
		// hung Redis must not stall the loop past the next ones.
		beatCtx, cancel := context.WithTimeout(ctx, s.cfg.NodeTimeout)
		if err := s.Heartbeat(beatCtx); err != nil && ctx.Err() == nil {
			s.cfg.Logger.Warn("presence: heartbeat failed", "instance", s.instance, "err", err)
		}
		cancel()
		select {
		case <-ctx.Done():
			stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			return s.heartbeat(stopCtx, true)
		case <-t.C:
		}
	}
}

// OtherLiveNodes returns the live instances (heartbeat at most NodeTimeout
// old) of nodes other than this one, at most 1000. Instances with this
// State's NodeID are not counted: they are this process or a predecessor
// restarted under the same name.
func (s *State) OtherLiveNodes(ctx context.Context) ([]string, error) {
	live, err := s.exec(ctx, luascript.Call{Script: scriptNodeLive, Keys: []string{s.k.Nodes()},
		Args: []string{ms(s.cfg.NodeTimeout), strconv.Itoa(maxDead)}}).AsStrSlice()
	if err != nil {
		return nil, luascript.Err(err)
	}
	others := live[:0]
	for _, inst := range live {
		if node, _, _ := strings.Cut(inst, "#"); node != s.cfg.NodeID {
			others = append(others, inst)
		}
	}
	return others, nil
}

// Leave marks this instance dead now, as Run does when it stops: for a
// process that heartbeat once and then gives up starting, so it does not
// count as a live node for NodeTimeout.
func (s *State) Leave(ctx context.Context) error { return s.heartbeat(ctx, true) }

// Node is a live node instance as its last heartbeat recorded it.
type Node struct {
	Instance    string `json:"instance"`
	Connections int    `json:"connections"`
	// HeartbeatAgeMs is how long ago (Redis time) it last heartbeat.
	HeartbeatAgeMs int64 `json:"heartbeatAgeMs"`
}

// Nodes lists the live instances (heartbeat at most NodeTimeout old, at
// most 1000) with the connection count of their last heartbeat.
func (s *State) Nodes(ctx context.Context) ([]Node, error) {
	flat, err := s.exec(ctx, luascript.Call{Script: scriptNodeList, Keys: []string{s.k.Nodes(), s.k.NodeInfo()},
		Args: []string{ms(s.cfg.NodeTimeout), strconv.Itoa(maxDead)}}).ToArray()
	if err != nil {
		return nil, luascript.Err(err)
	}
	if len(flat) == 0 {
		return nil, fmt.Errorf("presence: node_list: empty reply")
	}
	now, _ := flat[0].AsInt64()
	out := make([]Node, 0, (len(flat)-1)/3)
	for i := 1; i+2 < len(flat); i += 3 {
		inst, _ := flat[i].ToString()
		beat, _ := flat[i+1].AsFloat64()
		n := Node{Instance: inst, HeartbeatAgeMs: max(now-int64(beat), 0)}
		// An instance of an older version writes no info: 0 connections.
		if info, err := flat[i+2].ToString(); err == nil {
			c, _, _ := strings.Cut(info, "|")
			n.Connections, _ = strconv.Atoi(c)
		}
		out = append(out, n)
	}
	return out, nil
}
