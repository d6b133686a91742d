package fanout

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/chatstate/chatstate/internal/keys"
	"github.com/redis/rueidis"
)

// Sharded Pub/Sub on a Cluster: a conversation's channel is a shard channel
// in the conversation's slot, SSUBSCRIBEd on the link of the master that
// owns the slot. The broker keeps one link per master of the slot map it
// last read (CLUSTER SLOTS), each a connection dedicated from the client's
// connection pool of that node (Client.Nodes), so every conversation's
// publications come in order over one connection. rueidis does not expose
// its own slot map, and a dedicated cluster connection is pinned to the
// first slot it is used for, hence the broker's own map.
//
// A slot moving to another master makes Redis unsubscribe the slot's shard
// channels (a sunsubscribe push); a subscription sent to a master that lost
// the slot gets MOVED. The first is a loss: the repair reads the map again
// and subscribes the slot's channels at the new owner before Restored. The
// second fails that subscription and asks the loop to read the map again.

// slotRange is a range of slots and the address of the master owning it.
type slotRange struct {
	first, last uint16
	addr        string
}

// topology is a Cluster's slot map, sorted by slot.
type topology []slotRange

// owner is the address of the master owning slot, "" if none is known.
func (t topology) owner(slot uint16) string {
	i := sort.Search(len(t), func(i int) bool { return t[i].last >= slot })
	if i < len(t) && t[i].first <= slot {
		return t[i].addr
	}
	return ""
}

// masters lists the owners' addresses, each once, sorted.
func (t topology) masters() []string {
	var out []string
	for _, r := range t {
		if !slices.Contains(out, r.addr) {
			out = append(out, r.addr)
		}
	}
	slices.Sort(out)
	return out
}

// nodeTimeout bounds reading the slot map from one node, so a dead node the
// client still lists does not use up a repair's time.
const nodeTimeout = 2 * time.Second

// readTopology reads the slot map from the first node that answers.
func (b *Redis) readTopology(ctx context.Context) (topology, error) {
	var errs []error
	for addr, node := range b.client.Nodes() {
		nctx, cancel := context.WithTimeout(ctx, nodeTimeout)
		res, err := node.Do(nctx, node.B().ClusterSlots().Build()).ToArray()
		cancel()
		if err == nil {
			return parseTopology(res, addr), nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
	}
	return nil, fmt.Errorf("fanout: reading the cluster's slots: %w", errors.Join(errs...))
}

// parseTopology parses a CLUSTER SLOTS reply given by the node at from,
// naming masters as the client does (net.JoinHostPort of the preferred
// endpoint and port), so they are keys of Client.Nodes.
func parseTopology(reply []rueidis.RedisMessage, from string) topology {
	var t topology
	for _, r := range reply {
		v, err := r.ToArray()
		if err != nil || len(v) < 3 {
			continue
		}
		first, err1 := v[0].AsInt64()
		last, err2 := v[1].AsInt64()
		m, err3 := v[2].ToArray()
		if err1 != nil || err2 != nil || err3 != nil || len(m) < 2 {
			continue
		}
		host, _ := m[0].ToString()
		port, err := m[1].AsInt64()
		if err != nil {
			continue
		}
		switch host {
		case "?": // unknown endpoint: the slots stay unowned until it is known
			continue
		case "": // the node that answered
			host, _, _ = net.SplitHostPort(from)
		}
		t = append(t, slotRange{uint16(first), uint16(last), net.JoinHostPort(host, strconv.FormatInt(port, 10))})
	}
	slices.SortFunc(t, func(a, b slotRange) int { return int(a.first) - int(b.first) })
	return t
}

// repairShards reads the slot map, keeps one link per master (connecting
// the lost and new ones, retiring the others) and subscribes the channels
// of every slot that moved or was dropped at its owner.
func (b *Redis) repairShards(ctx context.Context) error {
	topo, err := b.readTopology(ctx)
	if err != nil {
		return err
	}
	var dial []*link
	var retire []func()
	b.mu.Lock()
	for slot := range b.conv {
		if b.topo.owner(slot) != topo.owner(slot) {
			b.resub[slot] = struct{}{}
		}
	}
	b.topo = topo
	masters := topo.masters()
	for addr, l := range b.shards {
		if !slices.Contains(masters, addr) {
			delete(b.shards, addr)
			if l.cancel != nil {
				retire = append(retire, l.cancel)
			}
		}
	}
	for _, addr := range masters {
		l := b.shards[addr]
		if l == nil {
			l = &link{shard: true, addr: addr, down: true}
			b.shards[addr] = l
		}
		if l.down {
			dial = append(dial, l)
		}
	}
	b.mu.Unlock()
	for _, c := range retire {
		c()
	}
	for _, l := range dial {
		if err := b.connect(ctx, l); err != nil {
			return fmt.Errorf("fanout: shard %s: %w", l.addr, err)
		}
	}

	// The slots left to subscribe again are owned by links that stayed up.
	type resub struct {
		sub  rueidis.DedicatedClient
		cmd  rueidis.Completed
		slot uint16
	}
	var todo []resub
	var unowned []uint16
	b.mu.Lock()
	for slot := range b.resub {
		set := b.conv[slot]
		l := b.shards[topo.owner(slot)]
		switch {
		case len(set) == 0:
		case l == nil || l.sub == nil:
			unowned = append(unowned, slot)
			continue
		default:
			for _, cmd := range batches(slices.Collect(maps.Keys(set)), func(c []string) rueidis.Completed { return l.sub.B().Ssubscribe().Channel(c...).Build() }) {
				todo = append(todo, resub{l.sub, cmd, slot})
			}
		}
		delete(b.resub, slot)
	}
	b.mu.Unlock()
	if len(unowned) > 0 {
		return fmt.Errorf("fanout: no master owns slot %d in the cluster's slot map", unowned[0])
	}
	for i, r := range todo {
		if err := r.sub.Do(ctx, r.cmd).Error(); err != nil {
			b.mu.Lock()
			for _, r := range todo[i:] {
				b.resub[r.slot] = struct{}{}
			}
			b.mu.Unlock()
			return err
		}
	}
	return nil
}

// shardSubscriptionsLocked builds the SSUBSCRIBEs of the channels of every
// slot l's master owns, one slot per command as Redis requires.
func (b *Redis) shardSubscriptionsLocked(l *link) []rueidis.Completed {
	var out []rueidis.Completed
	for slot, set := range b.conv {
		if b.topo.owner(slot) != l.addr {
			continue
		}
		delete(b.resub, slot)
		out = append(out, batches(slices.Collect(maps.Keys(set)), func(c []string) rueidis.Completed { return l.sub.B().Ssubscribe().Channel(c...).Build() })...)
	}
	return out
}

// slotsMoved reads the slot map after a subscription met MOVED. A change of
// masters or of the owner of a subscribed slot is a loss (a slot moving
// away normally shows first as a sunsubscribe push); any other change is
// only recorded, so the next subscriptions go to the right master.
func (b *Redis) slotsMoved(ctx context.Context) (bool, error) {
	if !b.cluster {
		return false, nil
	}
	ctx, stop := context.WithTimeout(ctx, subscribeTimeout)
	defer stop()
	topo, err := b.readTopology(ctx)
	if err != nil {
		b.log.Warn("redis cluster slots not read", "err", err)
		return false, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !slices.Equal(topo.masters(), b.topo.masters()) {
		return true, errSlotMoved
	}
	for slot := range b.conv {
		if topo.owner(slot) != b.topo.owner(slot) {
			return true, errSlotMoved
		}
	}
	b.topo = topo
	return false, nil
}

var (
	errSlotMoved = errors.New("fanout: a subscribed slot moved to another cluster master")
	errNoShard   = errors.New("fanout: no subscriber connection to the master of the conversation's slot")
)

// onShardSubscription is the subscription hook of l's connection gen: a
// sunsubscribe of a channel still wanted is Redis dropping the subscriptions
// of a slot its node no longer owns.
func (b *Redis) onShardSubscription(l *link, gen uint64, s rueidis.PubSubSubscription) {
	if s.Kind != "sunsubscribe" {
		return
	}
	slot := keys.Slot(s.Channel)
	b.mu.Lock()
	_, wanted := b.conv[slot][s.Channel]
	b.mu.Unlock()
	if wanted {
		b.kick(event{l: l, gen: gen, moved: true, slot: slot, err: errSlotMoved})
	}
}

// shardCmd is a command for one link's connection.
type shardCmd struct {
	sub rueidis.DedicatedClient
	cmd rueidis.Completed
}

// ssubscribe subscribes the shard channels chs, each on the link of its
// slot's master.
func (b *Redis) ssubscribe(ctx context.Context, chs []string) error {
	if len(chs) == 0 {
		return nil
	}
	var cmds []shardCmd
	missing := false
	b.mu.Lock()
	started := b.started
	for slot, cs := range bySlot(chs) {
		set := b.conv[slot]
		if set == nil {
			set = make(map[string]struct{}, len(cs))
			b.conv[slot] = set
		}
		for _, ch := range cs {
			set[ch] = struct{}{}
		}
		l := b.shards[b.topo.owner(slot)]
		if l == nil || l.sub == nil {
			missing = true
			continue
		}
		for _, cmd := range batches(cs, func(c []string) rueidis.Completed { return l.sub.B().Ssubscribe().Channel(c...).Build() }) {
			cmds = append(cmds, shardCmd{l.sub, cmd})
		}
	}
	b.mu.Unlock()
	switch {
	case !started:
		b.forgetShard(chs)
		return errNotStarted
	case missing:
		b.forgetShard(chs)
		b.kick(event{refresh: true})
		return errNoShard
	}
	for _, c := range cmds {
		if err := c.sub.Do(ctx, c.cmd).Error(); err != nil {
			b.forgetShard(chs)
			if re, ok := rueidis.IsRedisErr(err); ok {
				if _, moved := re.IsMoved(); moved {
					b.kick(event{refresh: true})
				}
			}
			return err
		}
	}
	return nil
}

// sunsubscribe unsubscribes the shard channels chs on their links.
func (b *Redis) sunsubscribe(ctx context.Context, chs []string) error {
	if len(chs) == 0 {
		return nil
	}
	b.forgetShard(chs)
	var cmds []shardCmd
	b.mu.Lock()
	for slot, cs := range bySlot(chs) {
		l := b.shards[b.topo.owner(slot)]
		if l == nil || l.sub == nil {
			continue // never subscribed, or dropped with its connection
		}
		for _, cmd := range batches(cs, func(c []string) rueidis.Completed { return l.sub.B().Sunsubscribe().Channel(c...).Build() }) {
			cmds = append(cmds, shardCmd{l.sub, cmd})
		}
	}
	b.mu.Unlock()
	var errs []error
	for _, c := range cmds {
		errs = append(errs, c.sub.Do(ctx, c.cmd).Error())
	}
	return errors.Join(errs...)
}

func (b *Redis) forgetShard(chs []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ch := range chs {
		slot := keys.Slot(ch)
		if set := b.conv[slot]; set != nil {
			delete(set, ch)
			if len(set) == 0 {
				delete(b.conv, slot)
			}
		}
	}
}

// bySlot groups channels by slot: one SSUBSCRIBE may not span slots.
func bySlot(chs []string) map[uint16][]string {
	out := make(map[uint16][]string)
	for _, ch := range chs {
		slot := keys.Slot(ch)
		out[slot] = append(out[slot], ch)
	}
	return out
}
