package gateway

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/chatstate/chatstate/socketio"
)

// drainEvent is what a drained socket receives just before its transport
// closes. The close is an Engine.IO transport close, not a socket.io
// DISCONNECT: socket.io-client reconnects by itself after "transport close"
// but not after "io server disconnect", so official clients need no code to
// follow a drain; others can read reconnect from the event.
const drainEvent = "server:draining"

// Drain moves this node's clients to other nodes ahead of a shutdown, so a
// rolling deploy is invisible to their friends and causes no reconnect
// storm:
//
//   - Draining reports true at once (readiness fails), and new Engine.IO
//     handshakes get 503, so a load balancer sends new connections elsewhere
//     and clients that land here anyway retry;
//   - the connected sockets are closed one by one, evenly spread across
//     window, each after the event it is handling (if any) has been acked,
//     with server:draining {reconnect: true, reason: "shutdown"} and then a
//     transport close;
//   - a drained device keeps its presence entry: its reconnect on another
//     node (same deviceId) takes the entry over, so its friends never see
//     it offline. A device that does not come back goes offline through the
//     crash path once this node's instance is marked dead (presence.State.Run
//     does that when its context ends, after Drain and Close): the presence
//     sweep of the other nodes prunes it and tells its friends.
//
// Drain returns DrainGrace after the last socket was closed, so the clients
// that reconnect promptly have taken their entries over before the caller
// marks this instance dead; or when ctx ends. Call Close afterwards: it
// closes what is left (sockets whose CONNECT was in progress) the same way.
func (g *Gateway) Drain(ctx context.Context, window time.Duration) {
	g.draining.Store(true)
	g.io.StopAccepting()
	var conns []*socketio.Conn
	g.hub.each(func(_ string, c *socketio.Conn) { conns = append(conns, c) })
	g.log.Info("draining", "sockets", len(conns), "window", window)
	if len(conns) == 0 {
		return
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	start := time.Now()
	for i, c := range conns {
		// Socket i of n closes at i/n of the window: the first at once,
		// the last one window/n before its end.
		at := start.Add(time.Duration(int64(window) * int64(i) / int64(len(conns))))
		if !sleep(ctx, time.Until(at)) {
			return
		}
		wg.Add(1)
		// CloseTransport waits for the socket's running handler: one slow
		// handler must not delay the schedule of the others.
		go func() {
			defer wg.Done()
			g.drainConn(c)
		}()
	}
	wg.Wait()
	sleep(ctx, g.cfg.DrainGrace)
}

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Draining reports whether Drain has begun: the node is not ready for new
// clients.
func (g *Gateway) Draining() bool { return g.draining.Load() }

func (g *Gateway) drainConn(c *socketio.Conn) {
	if cl, ok := c.Data().(*client); ok && cl.drainReq != nil {
		cl.drainOnce.Do(func() { close(cl.drainReq) })
	}
	c.CloseTransport(g.drainFrame)
}

// drainedDisconnect reports whether a disconnect is this node's drain (or
// the Close after it), which leaves the device's presence for its reconnect
// elsewhere. A client that disconnects by itself meanwhile, or times out,
// goes offline as usual.
func (g *Gateway) drainedDisconnect(reason string) bool {
	return reason == socketio.ReasonServerShutdown && g.draining.Load()
}

// holdAck is the fault-injection point of Config.HoldAckUntilDrain: the ack
// of a message:send with that content waits until the drain has asked the
// sender's socket to close, so the test sees an ack in flight at that
// moment. The message is stored and published already.
func (g *Gateway) holdAck(ctx context.Context, cl *client, ev *socketio.Event) {
	if g.cfg.HoldAckUntilDrain == "" || ev.Name != "message:send" || len(ev.Args) == 0 {
		return
	}
	var req sendRequest
	if json.Unmarshal(ev.Args[0], &req) != nil || req.Content != g.cfg.HoldAckUntilDrain {
		return
	}
	select {
	case <-cl.drainReq:
	case <-ctx.Done():
	}
}

// tasks joins work started by timers (typing expiry) and by the subscriber
// (resync), which may begin at any moment: once closed, nothing new starts,
// so Close can wait for what runs.
type tasks struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// add registers a task; false means the gateway is closed: skip the work.
func (t *tasks) add() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.wg.Add(1)
	return true
}

func (t *tasks) done() { t.wg.Done() }

func (t *tasks) closeAndWait() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.wg.Wait()
}
